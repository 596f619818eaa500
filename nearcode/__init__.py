"""nearcode: local code completion.

One import root for the whole product. The card's top-level folders are its parts, reached
through links in this folder (a wheel holds real copies):

- ``nearcode.daemon`` (``daemon/``): the per-user process that serves the model.
- ``nearcode.lsp`` (``lsp/``): the language server editors start.
- ``nearcode.shared`` (``nearcode/shared/``): what both need (protocol, paths, privacy, languages).
- ``nearcode.cli`` (``nearcode/cli/``): the ``nearcode`` command, above both.
- ``nearcode.prompts`` (``prompts/``): templates as data.

Dependencies run one way: cli -> daemon, lsp -> shared; daemon and lsp never import each other
(tests/test_layout.py checks it).
"""

__version__ = "0.1.0"
