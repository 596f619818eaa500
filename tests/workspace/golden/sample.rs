//! Crate doc.
use std::collections::HashMap;
use crate::util::{self, parse as p, io::Read};
use super::*;
pub use self::inner::Thing;
use serde::{Deserialize, Serialize};
mod inner;
pub mod shapes { pub fn x() {} }
/// Max size.
pub const MAX: usize = 10;
static NAME: &str = "x";
/// A point.
/// Second line.
#[derive(Debug)]
pub struct Point<T> { pub x: T, y: f64 }
pub enum Shape { Circle(f64), Square { side: f64 } }
pub trait Area {
    /// Area.
    fn area(&self) -> f64;
    fn name(&self) -> String { String::new() }
}
pub type Id = u64;
impl<T> Point<T> {
    /// New point.
    pub fn new(x: T, y: f64) -> Self { Point { x, y } }
    const ORIGIN: f64 = 0.0;
}
impl Area for Point<f64> { fn area(&self) -> f64 { 0.0 } }
pub async fn run(cfg: &Config) -> Result<(), Error> where T: Send { Ok(()) }
macro_rules! square { ($x:expr) => { $x * $x }; }
