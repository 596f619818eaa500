// Package util does things.
package util

import (
	"fmt"
	str "strings"
	"github.com/me/proj/internal/db"
)
import "os"

// MaxSize is the max.
const MaxSize = 10
const (
	// A is first.
	A = iota
	B
)
var Default, Other = New("x"), 2

// Server serves.
// It does more.
type Server struct {
	// Addr is where.
	Addr string
	db.Conn
	*Logger
	port, x int
}
type Handler interface {
	// Handle handles.
	Handle(w int) error
	fmt.Stringer
}
type ID = string
type Celsius float64

// New makes.
func New[T any](name string,
	opts ...Option) (*Server, error) { return nil, nil }

// Run runs.
func (s *Server) Run(ctx context.Context) error { return nil }
func (l List[T]) Len() int { return 0 }
