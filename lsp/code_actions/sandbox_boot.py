"""The test run itself, inside the sandbox, in the project's own interpreter.

    python sandbox_boot.py GUARD_FILE MODE FRAMEWORK TARGET

Installs the in-process network guard (nearcode/shared/privacy.py, copied next to this file: a
second wall behind the sandbox's empty network namespace), then runs pytest or unittest on the
generated test file. A project interpreter without pytest exits with NO_PYTEST, so the server can
say "not run: pytest is not installed in <interpreter>" instead of reporting a failed run.
Stdlib only: the project's interpreter may be any Python 3.
"""

import runpy
import sys

NO_PYTEST = 97


def main() -> None:
    guard_file, mode, framework, target = sys.argv[1:5]
    runpy.run_path(guard_file)["install_network_guard"]("generated-tests", mode)
    if framework == "pytest":
        try:
            import pytest
        except ImportError:
            sys.stderr.write(f"nearcode: pytest is not installed in {sys.executable}\n")
            sys.exit(NO_PYTEST)
        sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "--no-header", target]))
    import unittest

    unittest.main(module=None, argv=["unittest", "-v", target])


if __name__ == "__main__":
    main()
