"""The wire contracts, in one place: the daemon's HTTP API (daemon_api), the language server's
settings (settings) and what editors exchange beyond standard LSP (editor). The Python models are
the source; export.py generates the VS Code and Neovim counterparts from them."""
