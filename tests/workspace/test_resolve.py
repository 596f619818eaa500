"""Import resolution per language, on small real trees indexed by the real scan."""

from __future__ import annotations

from pathlib import Path

from nearcode.daemon.workspace import WorkspaceIndex
from tests.workspace.conftest import write


def _index(root: Path, files: dict[str, str]) -> WorkspaceIndex:
    for name, text in files.items():
        write(root, name, text)
    index = WorkspaceIndex(root)
    while index.scan_step(1.0):
        pass
    return index


def _resolved(index: WorkspaceIndex, path: str) -> dict[str, list[str]]:
    """Each import of `path` (by module, names) -> the files it resolves to."""
    return {
        f"{ref.module}:{','.join(ref.names)}" if ref.names else ref.module: index.resolve(path, ref)
        for ref in index.file_imports(path)
    }


def test_python_relative_absolute_packages_and_src_layout(tmp_path: Path) -> None:
    index = _index(tmp_path, {
        "src/shop/__init__.py": "from .models import Cart\n",
        "src/shop/models.py": "class Cart:\n    pass\n",
        "src/shop/types.py": "Money = int\n",
        "src/shop/util.py": "def fmt(x): ...\n",
        "src/shop/api/__init__.py": "",
        "src/shop/api/helpers.py": "def helper(): ...\n",
        "src/shop/api/views.py": (
            "from ..models import Cart\nfrom . import helpers\nfrom shop.util import fmt\nimport shop.util as u\n"
            "from ....too_far import x\nimport os\n"
        ),
        "tests/test_cart.py": "from shop.models import Cart\nimport types\nfrom shop import api\n",
    })
    assert _resolved(index, "src/shop/api/views.py") == {
        "models:Cart": ["src/shop/models.py"],
        ":helpers": ["src/shop/api/helpers.py", "src/shop/api/__init__.py"],
        "shop.util:fmt": ["src/shop/util.py"],
        "shop.util": ["src/shop/util.py"],
        "too_far:x": [],
        "os": [],
    }
    assert _resolved(index, "tests/test_cart.py") == {
        "shop.models:Cart": ["src/shop/models.py"],
        "types": [],  # the standard library's, not the package's own types.py
        "shop:api": ["src/shop/api/__init__.py", "src/shop/__init__.py"],
    }
    assert _resolved(index, "src/shop/__init__.py") == {"models:Cart": ["src/shop/models.py"]}
    found = index.lookup("src/shop/api/views.py", "Cart")
    assert [d.path for d in found] == ["src/shop/models.py"]


def test_python_workspace_that_is_itself_a_package(tmp_path: Path) -> None:
    root = tmp_path / "pydantic_like"
    index = _index(root, {
        "__init__.py": "", "main.py": "from pydantic_like.fields import Field\nimport typing\n",
        "fields.py": "class Field: ...\n", "typing.py": "X = 1\n",
    })
    assert _resolved(index, "main.py") == {"pydantic_like.fields:Field": ["fields.py"], "typing": []}


def test_typescript_paths_index_files_extensions_and_workspace_packages(tmp_path: Path) -> None:
    index = _index(tmp_path, {
        "web/tsconfig.json": '{\n  // paths for the app\n  "compilerOptions": {"baseUrl": ".", "paths": {"@/*": ["src/*"]},},\n}\n',
        "web/src/app.ts": (
            'import { Button } from "./components/Button";\nimport { api } from "@/lib/api";\n'
            'import util from "./util.js";\nimport { x } from "./dir";\nimport React from "react";\n'
            'import { shared } from "@acme/shared";\nimport { deep } from "@acme/shared/src/deep";\n'
            'const legacy = require("../legacy");\n'
        ),
        "web/src/components/Button.tsx": "export function Button() { return null; }\n",
        "web/src/lib/api.ts": "export const api = {};\n",
        "web/src/util.ts": "export default function util() {}\n",
        "web/src/dir/index.ts": "export const x = 1;\n",
        "web/legacy.js": "module.exports = {};\n",
        "packages/shared/package.json": '{"name": "@acme/shared", "main": "dist/index.js", "types": "src/index.ts"}',
        "packages/shared/src/index.ts": "export const shared = 1;\n",
        "packages/shared/src/deep.ts": "export const deep = 1;\n",
    })
    assert _resolved(index, "web/src/app.ts") == {
        "./components/Button:Button": ["web/src/components/Button.tsx"],
        "@/lib/api:api": ["web/src/lib/api.ts"],
        "./util.js:default": ["web/src/util.ts"],
        "./dir:x": ["web/src/dir/index.ts"],
        "react:default": [],
        "@acme/shared:shared": ["packages/shared/src/index.ts"],
        "@acme/shared/src/deep:deep": ["packages/shared/src/deep.ts"],
        "../legacy": ["web/legacy.js"],
    }


def test_go_packages_through_go_mod(tmp_path: Path) -> None:
    index = _index(tmp_path, {
        "go.mod": "module github.com/acme/svc\n\ngo 1.22\n",
        "cmd/server/main.go": 'package main\n\nimport (\n\t"fmt"\n\t"github.com/acme/svc/internal/store"\n)\n',
        "internal/store/store.go": "package store\n\nfunc Open() {}\n",
        "internal/store/cache.go": "package store\n\ntype Cache struct{}\n",
        "internal/store/store_test.go": "package store\n",
    })
    assert _resolved(index, "cmd/server/main.go") == {
        "fmt": [],
        "github.com/acme/svc/internal/store": ["internal/store/cache.go", "internal/store/store.go"],
    }


def test_rust_crate_self_super_mod_files_and_workspace_crates(tmp_path: Path) -> None:
    index = _index(tmp_path, {
        "core/Cargo.toml": '[package]\nname = "shop-core"\nversion = "0.1.0"\n',
        "core/src/lib.rs": "mod cart;\npub mod util;\nuse crate::cart::Cart;\nuse std::collections::HashMap;\n",
        "core/src/cart.rs": "use super::util::fmt;\nuse crate::util::money::{Money, Currency};\nmod items;\npub struct Cart;\n",
        "core/src/cart/items.rs": "pub struct Item;\n",
        "core/src/util/mod.rs": "pub mod money;\npub fn fmt() {}\n",
        "core/src/util/money.rs": "pub struct Money;\n",
        "cli/Cargo.toml": '[package]\nname = "cli"\n',
        "cli/src/main.rs": "use shop_core::cart::Cart;\nfn main() {}\n",
    })
    assert _resolved(index, "core/src/lib.rs") == {
        "self::cart": ["core/src/cart.rs"], "self::util": ["core/src/util/mod.rs"],
        "crate::cart:Cart": ["core/src/cart.rs"], "std::collections:HashMap": [],
    }
    assert _resolved(index, "core/src/cart.rs") == {
        "super::util:fmt": ["core/src/util/mod.rs"],
        "crate::util::money:Money,Currency": ["core/src/util/money.rs"],
        "self::items": ["core/src/cart/items.rs"],
    }
    assert _resolved(index, "cli/src/main.rs") == {"shop_core::cart:Cart": ["core/src/cart.rs"]}


def test_java_classes_packages_and_static_imports(tmp_path: Path) -> None:
    base = "src/main/java/com/acme"
    index = _index(tmp_path, {
        f"{base}/shop/Cart.java": (
            "package com.acme.shop;\n\nimport com.acme.shop.model.Item;\nimport com.acme.shop.model.*;\n"
            "import static com.acme.util.Strings.join;\nimport java.util.List;\n\npublic class Cart {}\n"
        ),
        f"{base}/shop/model/Item.java": "package com.acme.shop.model;\n\npublic class Item {}\n",
        f"{base}/shop/model/Price.java": "package com.acme.shop.model;\n\npublic class Price {}\n",
        f"{base}/util/Strings.java": "package com.acme.util;\n\npublic class Strings { static String join() { return \"\"; } }\n",
    })
    assert _resolved(index, f"{base}/shop/Cart.java") == {
        "com.acme.shop.model:Item": [f"{base}/shop/model/Item.java"],
        "com.acme.shop.model:*": [f"{base}/shop/model/Item.java", f"{base}/shop/model/Price.java"],
        "com.acme.util.Strings:join": [f"{base}/util/Strings.java"],
        "java.util:List": [],
    }
