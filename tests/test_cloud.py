"""Cloud hand-off: redaction, deny list, payload preview and audit log (pure, thorough), then the
whole path through the language server to a real local OpenAI-compatible server (llama.cpp's,
through xllamacpp, on 127.0.0.1 with an API key) standing in for the cloud provider.

A repository's text is untrusted input here too: every secret form below is redacted, in linear
time (a crafted 40 kB selection previews in well under a second), the deny list applies from the
workspace folder down and ignores case, and the audit log has the request before it leaves."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lsprotocol import types

from nearcode.lsp.cloud.audit import AuditEntry, AuditLog
from nearcode.lsp.cloud.payload import PayloadRefused, build_payload
from nearcode.lsp.cloud.redaction import env_values, redact
from nearcode.shared.deny import DenyList
from tests.lsp_actions import code_actions, open_document, run_command, start_editor_client

OPENAI_KEY = "sk-proj-" + "Ab3" * 12
GITHUB_TOKEN = "ghp_" + "x7Y" * 12
AWS_KEY = "AKIA" + "ABCDEFGHIJKLMNOP"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----"

# ---------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        (f'client = OpenAI(api_key="{OPENAI_KEY}")', OPENAI_KEY, "openai-key"),
        (f"token = {GITHUB_TOKEN}", GITHUB_TOKEN, "github-token"),
        (f"aws_access_key_id = {AWS_KEY}", AWS_KEY, "aws-access-key"),
        ("DATABASE_URL = 'postgres://app:s3cr3t-pw@db.internal:5432/shop'", "s3cr3t-pw", "connection-password"),
        ("Server=db;User Id=app;Password=Hunter2Pass;", "Hunter2Pass", "connection-password"),
        ('headers = {"Authorization": "Bearer abcdefghijklmnopqrstuvwxyz012345"}', "abcdefghijklmnopqrstuvwxyz012345", "bearer-token"),
        ('DB_PASSWORD: "correct-horse-battery"', "correct-horse-battery", "secret-assignment"),
        ("export STRIPE_SECRET=whsec_live_0123456789", "whsec_live_0123456789", "secret-assignment"),
        (f"key = '''{PRIVATE_KEY}'''", "MIIEowIBAAKCAQEA7", "private-key"),
        ("jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'", "dozjgNryP4J3jVmNHl0w5N", "jwt"),
        # INI / YAML / TOML keys, unquoted values
        ("[default]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "secret-assignment"),
        ("service:\n  api_key: abcd1234efgh5678\n", "abcd1234efgh5678", "secret-assignment"),
        ("token = 3f9a8b7c6d5e4f3a2b1c\n", "3f9a8b7c6d5e4f3a2b1c", "secret-assignment"),
        ("password: hunter2hunter2\n", "hunter2hunter2", "connection-password"),
        # npm's .npmrc, old and new token forms
        ("//registry.npmjs.org/:_authToken=abcdef12-3456-7890-abcd-ef1234567890\n", "abcdef12-3456-7890-abcd-ef1234567890", "secret-assignment"),
        ("//registry.npmjs.org/:_authToken=npm_" + "a1B2c3D4e5" * 4 + "\n", "npm_" + "a1B2c3D4e5" * 4, "npm-token"),
        # Azure storage connection string
        ("DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==;EndpointSuffix=core.windows.net",
         "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==", "secret-assignment"),
        # PyPI and SendGrid tokens, wherever they are
        ("upload(pypi-AgEIcHlwaS5vcmcCJGI4ZTQ1YjZjLTQ4NGItNGM2Yi1hZGJmLTk5ZmQ3NTRlNTJlMgACKlsz)",
         "pypi-AgEIcHlwaS5vcmcCJGI4ZTQ1YjZjLTQ4NGItNGM2Yi1hZGJmLTk5ZmQ3NTRlNTJlMgACKlsz", "pypi-token"),
        ("mail = Client('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')",
         "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", "sendgrid-key"),
    ],
)
def test_each_kind_of_secret_is_redacted(text: str, secret: str, kind: str) -> None:
    result = redact(text)
    assert secret not in result.text
    assert f"[REDACTED:{kind}]" in result.text
    assert result.counts.get(kind, 0) >= 1


def test_redaction_keeps_the_shape_and_plain_code() -> None:
    code = ("def connect(url):\n    return create_engine(url)\n\npassword_length = 12\ntoken_count = len(tokens)\n"
            "self.token = token_value\nAPI_KEY = os.environ['API_KEY']\npassword: ${DB_PASSWORD}\napi_key: str\n")
    assert redact(code).text == code and not redact(code).findings
    shaped = redact("url = 'mysql://root:pw1234@localhost/db'\n")
    assert shaped.text == "url = 'mysql://root:[REDACTED:connection-password]@localhost/db'\n"
    assert shaped.findings == [("connection-password", 1)]


def test_env_values_are_redacted_anywhere(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PAYMENT_ID=acct-7781-zz\nDEBUG=true\n# comment\nexport REGION='eu-west-9'\n")
    values = env_values(tmp_path)
    assert "acct-7781-zz" in values and "eu-west-9" in values and "true" not in values
    result = redact("charge(account='acct-7781-zz', region=REGION)\nx = 'eu-west-9'", values)
    assert "acct-7781-zz" not in result.text and "eu-west-9" not in result.text
    assert result.counts == {"env-value": 2} and [line for _, line in result.findings] == [1, 2]


# A selection a hostile repository could hand the user: every pattern's worst case at once.
ADVERSARIAL = "".join([
    "a." * 4000, "token=" * 1300, "sk-" * 2600, "a://" * 2000, "-----BEGIN RSA PRIVATE KEY-----" * 250,
    "x_token='" + "a" * 4000, "password = " * 700 + "(", "Bearer " * 1100, "ghp_" + "_a" * 2000, "SG." + "a." * 1500,
])[:40_000]


def test_redaction_is_linear_on_adversarial_text() -> None:
    assert len(ADVERSARIAL) == 40_000
    started = time.perf_counter()
    redact(ADVERSARIAL)
    elapsed = time.perf_counter() - started
    print(f"redaction of the 40 kB adversarial selection: {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0
    for piece in ("a." * 20_000, "token=" * 6_600, "a://" * 10_000):  # each alone, 40 kB
        started = time.perf_counter()
        redact(piece)
        assert time.perf_counter() - started < 1.0, piece[:10]


# ---------------------------------------------------------------- deny list


def test_builtin_deny_list() -> None:
    deny = DenyList.load(None)
    for path in [".env", "config/.env.production", "certs/server.pem", "tls/site.key", "keys/id_ed25519", "home/.ssh/config", "store.p12", ".npmrc",
                 ".aws/credentials", "ops/.aws/credentials", ".kube/config", "infra/prod.tfstate", "infra/prod.tfstate.backup",
                 ".pgpass", "deploy/secrets.auto.tfvars",
                 # case does not matter: the same files on a case-insensitive filesystem
                 ".ENV", "Config/.Env.Local", "keys/ID_RSA", ".AWS/Credentials", "Secrets.JSON", "infra/PROD.TFSTATE", ".PGPASS"]:  # fmt: skip
        assert deny.reason(path) is not None, path
    for path in ["src/app.py", "README.md", "environment.py", "keyboard.ts"]:
        assert deny.reason(path) is None, path


def test_nearcodeignore_patterns(tmp_path: Path) -> None:
    (tmp_path / ".nearcodeignore").write_text("# private code\ninternal/\n*.sql\n!schema.sql\n/build/**\ndocs/**/secret.md\n")
    deny = DenyList.load(tmp_path)
    assert deny.reason("internal/billing.py") is not None and deny.reason("src/internal/x.py") is not None
    assert deny.reason("dump.sql") is not None and deny.reason("db/dump.sql") is not None
    assert deny.reason("schema.sql") is None
    assert deny.reason("build/out.js") is not None and deny.reason("src/build/out.js") is None
    assert deny.reason("docs/a/b/secret.md") is not None and deny.reason("docs/secret.md") is not None
    assert "internal/" in (deny.reason("internal/billing.py") or "")


def test_a_monorepo_roots_nearcodeignore_covers_its_sub_packages(tmp_path: Path) -> None:
    from nearcode.shared.deny import workspace_root

    mono = tmp_path / "mono"
    package = mono / "packages" / "billing"
    (package / "src").mkdir(parents=True)
    (mono / ".git").mkdir()
    (mono / ".nearcodeignore").write_text("packages/billing/src/pricing.py\n*.internal.py\n")
    (package / "pyproject.toml").write_text("[project]\nname='billing'\n")  # the nearest package root
    (package / ".nearcodeignore").write_text("!src/open.internal.py\n")
    for name in ("pricing.py", "rules.internal.py", "open.internal.py", "api.py"):
        (package / "src" / name).write_text("x = 1\n")
    for folders in ([mono], [], [tmp_path]):  # the workspace folder, none (the repository root), an outer one
        root = workspace_root(package / "src" / "api.py", folders)
        assert root in (mono, tmp_path), root
        def reason(name: str, root: Path = root) -> str | None:
            file = package / "src" / name
            return DenyList.for_file(file, root).reason_for(file)
        assert "mono/.nearcodeignore" in (reason("pricing.py") or "") or ".nearcodeignore" in (reason("pricing.py") or "")
        assert reason("rules.internal.py") is not None
        assert reason("RULES.INTERNAL.PY") is not None  # case-insensitive
        assert reason("open.internal.py") is None, "a deeper file's negation re-includes it"
        assert reason("api.py") is None
    assert DenyList.for_file(mono / "x.py", mono).reason_for(tmp_path / "elsewhere.py") is not None, "outside the workspace"


async def test_a_monorepo_file_is_never_sent_through_the_language_server(daemon_env: dict[str, str], tmp_path: Path) -> None:
    mono = tmp_path / "mono"
    package = mono / "packages" / "billing"
    package.mkdir(parents=True)
    (mono / ".nearcodeignore").write_text("packages/billing/pricing.py\n")
    (package / "pyproject.toml").write_text("[project]\nname='billing'\n")
    uri = (package / "pricing.py").as_uri()
    audit = tmp_path / "audit.jsonl"
    env = {**daemon_env, "NEARCODE_AUDIT_LOG": str(audit)}
    client, editor = await start_editor_client(env, {"privacyMode": "cloud-allowed", "cloudEndpoint": "http://127.0.0.1:9/v1"})
    try:
        open_document(client, editor, uri, "PRICE = 12\n")
        assert not [a for a in await code_actions(client, uri, 0, 0) if a.kind == "refactor.rewrite.nearcode.cloud"]
        selection = {"uri": uri, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}, "task": "explain"}
        with pytest.raises(Exception, match="never sent"):
            await run_command(client, "nearcode.previewCloudPayload", selection)
    finally:
        await client.shutdown_session()


async def test_a_40_kb_adversarial_selection_previews_in_under_a_second(daemon_env: dict[str, str], tmp_path: Path) -> None:
    client, editor = await start_editor_client(daemon_env, {"privacyMode": "cloud-allowed", "cloudEndpoint": "http://127.0.0.1:9/v1"})
    try:
        uri = (tmp_path / "crafted.py").as_uri()
        open_document(client, editor, uri, ADVERSARIAL)
        warm_up = {"uri": uri, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 10}}, "task": "explain"}
        await run_command(client, "nearcode.previewCloudPayload", warm_up)
        selection = {"uri": uri, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 40_000}}, "task": "explain"}
        started = time.perf_counter()
        preview = await run_command(client, "nearcode.previewCloudPayload", selection)
        elapsed = time.perf_counter() - started
        # Meanwhile the server stays responsive: redaction runs off its event loop.
        status = await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status")), 5)
        print(f"preview of the 40 kB adversarial selection through the language server: {elapsed * 1000:.0f} ms")
        assert preview["sent"] is False and preview["bytes"] > 10_000 and preview["redactions"] and status
        assert elapsed < 1.0, f"{elapsed:.2f} s"
    finally:
        await client.shutdown_session()


# ---------------------------------------------------------------- payload preview and audit log


def test_payload_is_redacted_exact_and_refuses_denied_files(tmp_path: Path) -> None:
    selection = f'KEY = "{OPENAI_KEY}"\nprint(KEY)\n'
    payload = build_payload(task="explain", selection=selection, relative_path="src/app.py", language="python",
                            root=tmp_path, endpoint="https://api.example.test/v1/", model="m")  # fmt: skip
    body = json.loads(payload.body)
    assert payload.destination == "https://api.example.test/v1/chat/completions"
    assert OPENAI_KEY not in payload.body.decode() and "[REDACTED:openai-key]" in body["messages"][1]["content"]
    assert "src/" not in payload.body.decode(), "only the file's name, not the folder layout"
    preview = payload.preview()
    assert preview["body"] == payload.body.decode() and preview["bytes"] == len(payload.body)
    assert preview["redactions"] == {"openai-key": 1} and preview["redacted_lines"] == [1]
    with pytest.raises(PayloadRefused, match="never sent"):
        build_payload(task="explain", selection="A=1", relative_path=".env", language="", root=tmp_path, endpoint="x", model="m")
    with pytest.raises(PayloadRefused, match="nothing selected"):
        build_payload(task="explain", selection="  \n", relative_path="a.py", language="", root=tmp_path, endpoint="x", model="m")


class _SlowCloud(BaseHTTPRequestHandler):
    """A cloud endpoint that holds each request until the test releases it."""

    received = threading.Event()
    release = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).received.set()
        type(self).release.wait(30)
        body = json.dumps({"choices": [{"message": {"role": "assistant", "content": "It adds."}}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


async def test_the_audit_entry_is_written_before_the_request_leaves(daemon_env: dict[str, str], tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowCloud)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    audit = tmp_path / "audit.jsonl"
    env = {**daemon_env, "NEARCODE_AUDIT_LOG": str(audit), "NEARCODE_CLOUD_API_KEY": "sk-test-not-real"}
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1"
    client, editor = await start_editor_client(env, {"privacyMode": "cloud-allowed", "cloudEndpoint": endpoint})
    try:
        uri = (tmp_path / "add.py").as_uri()
        open_document(client, editor, uri, "def add(a, b):\n    return a + b\n")
        selection = {"uri": uri, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}, "task": "explain"}
        task = asyncio.ensure_future(run_command(client, "nearcode.askCloud", selection))
        assert await asyncio.to_thread(_SlowCloud.received.wait, 30), "the request never arrived"
        in_flight = AuditLog(audit).entries()
        assert [e["outcome"] for e in in_flight] == ["sending"], in_flight  # on disk while it is in flight
        assert in_flight[0]["destination"] == f"{endpoint}/chat/completions" and in_flight[0]["bytes_sent"] > 0
        _SlowCloud.release.set()
        answer = await asyncio.wait_for(task, 30)
        assert answer["sent"] is True
        entries = AuditLog(audit).entries()
        assert len(entries) == 1 and entries[0]["outcome"] == "completed" and entries[0]["id"] == in_flight[0]["id"]
        assert [line["outcome"] for line in AuditLog(audit).lines()] == ["sending", "completed"]
    finally:
        _SlowCloud.release.set()
        await client.shutdown_session()
        server.shutdown()


def test_audit_log_is_private_and_has_no_payload(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state" / "audit.jsonl")
    log.record(AuditEntry("https://api.example.test/v1/chat/completions", "m", "explain", 1234, {"openai-key": 1}, [], "completed"))
    log.record(AuditEntry("https://api.example.test/v1/chat/completions", "m", "explain", 0, {}, [".env"], "refused: denied"))
    entries = log.entries()
    assert [e["outcome"] for e in entries] == ["completed", "refused: denied"]
    assert entries[0]["bytes_sent"] == 1234 and entries[0]["redactions"] == {"openai-key": 1} and entries[0]["time"]
    assert (tmp_path / "state" / "audit.jsonl").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


# ---------------------------------------------------------------- end to end, real local server

SERVE = """
import sys, time, xllamacpp as xlc
p = xlc.CommonParams()
p.model.path = sys.argv[1]
p.n_ctx = 2048
p.n_parallel = 1
p.cpuparams.n_threads = 2
p.cpuparams_batch.n_threads = 2
p.port = 0
p.api_keys = [sys.argv[2]]
p.n_predict = 48  # the server's own cap on an answer (the payload still asks for 512): a short explanation
srv = xlc.Server(p)
print("listening", srv.listening_address, flush=True)
while True:
    time.sleep(3600)
"""


@pytest.fixture(scope="module")
def cloud_stand_in() -> Iterator[tuple[str, str]]:
    """(base URL, API key) of llama.cpp's OpenAI-compatible server on 127.0.0.1."""
    model = subprocess.run([sys.executable, "-m", "nearcode", "model", "path"], capture_output=True, text=True, check=True).stdout.strip()
    key = secrets.token_urlsafe(16)
    process = subprocess.Popen([sys.executable, "-c", SERVE, model, key], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening"), "the stand-in server did not start"
        address = line.split()[1].rstrip("/")
        assert "127.0.0.1" in address
        yield f"{address}/v1", key
    finally:
        process.kill()
        process.wait()


async def test_ask_cloud_sends_the_previewed_payload_and_audits_it(
    daemon_env: dict[str, str], cloud_stand_in: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, key = cloud_stand_in
    audit = tmp_path / "audit.jsonl"
    env = {**daemon_env, "NEARCODE_CLOUD_API_KEY": key, "NEARCODE_AUDIT_LOG": str(audit), "NEARCODE_CLOUD_MODEL": "qwen"}
    options = {"privacyMode": "cloud-allowed", "cloudEndpoint": endpoint}
    client, editor = await start_editor_client(env, options)
    try:
        (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
        source = f'API_KEY = "{OPENAI_KEY}"\n\n\ndef add(a, b):\n    return a + b\n'
        uri = (tmp_path / "app.py").as_uri()
        open_document(client, editor, uri, source)
        actions = await code_actions(client, uri, 3, 0, end=(4, 16))
        cloud = [a for a in actions if a.kind == "refactor.rewrite.nearcode.cloud"]
        assert {a.command.arguments[0]["task"] for a in cloud if a.command and a.command.command == "nearcode.askCloud"} == {"explain", "improve", "complete", "tests"}
        selection = {"uri": uri, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 5, "character": 0}}, "task": "explain"}
        preview = await run_command(client, "nearcode.previewCloudPayload", selection)
        assert preview["sent"] is False and OPENAI_KEY not in preview["body"] and preview["redactions"] == {"openai-key": 1}
        assert not audit.exists(), "a preview sends nothing and logs nothing"
        answer = await run_command(client, "nearcode.askCloud", selection)
        assert answer["sent"] is True and answer["text"].strip()
        assert answer["bytes"] == preview["bytes"] and answer["destination"] == f"{endpoint}/chat/completions"
        entries = AuditLog(audit).entries()
        assert len(entries) == 1 and entries[0]["outcome"] == "completed"
        assert entries[0]["bytes_sent"] == preview["bytes"] and entries[0]["redactions"] == {"openai-key": 1}
        assert OPENAI_KEY not in audit.read_text()
        # A denied file is never sent, even in cloud-allowed mode, and the refusal is audited.
        env_uri = (tmp_path / ".env").as_uri()
        open_document(client, editor, env_uri, "TOKEN=abcdef123456\n", "dotenv")
        assert not [a for a in await code_actions(client, env_uri, 0, 0) if a.kind == "refactor.rewrite.nearcode.cloud"]
        with pytest.raises(Exception, match="never sent"):
            await run_command(client, "nearcode.askCloud", {**selection, "uri": env_uri})
        assert AuditLog(audit).entries()[-1]["outcome"].startswith("refused")
        status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status"))
        assert status["network"]["mode"] == "cloud-allowed" and status["network"]["blocked"] == 0
    finally:
        await client.shutdown_session()


async def test_api_key_comes_from_the_environment_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from nearcode.lsp.cloud import client
    from nearcode.shared.protocol.settings import Settings

    settings, problem = Settings().merged({"privacyMode": "cloud-allowed", "cloudEndpoint": "http://127.0.0.1:9/v1", "apiKey": "sk-x"})
    assert problem is None and "apiKey" not in json.dumps(settings.model_dump(by_alias=True)), "no key in settings"
    monkeypatch.delenv("NEARCODE_CLOUD_API_KEY", raising=False)
    payload = build_payload(task="explain", selection="x = 1\n", relative_path="a.py", language="python",
                            root=tmp_path, endpoint="http://127.0.0.1:9/v1", model="m")  # fmt: skip
    with pytest.raises(client.CloudError, match="NEARCODE_CLOUD_API_KEY"):
        await client.send(payload)
