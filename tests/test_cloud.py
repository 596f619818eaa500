"""Cloud hand-off: redaction, deny list, payload preview and audit log (pure, thorough), then the
whole path through the language server to a real local OpenAI-compatible server (llama.cpp's,
through xllamacpp, on 127.0.0.1 with an API key) standing in for the cloud provider."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
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
    ],
)
def test_each_kind_of_secret_is_redacted(text: str, secret: str, kind: str) -> None:
    result = redact(text)
    assert secret not in result.text
    assert f"[REDACTED:{kind}]" in result.text
    assert result.counts.get(kind, 0) >= 1


def test_redaction_keeps_the_shape_and_plain_code() -> None:
    code = "def connect(url):\n    return create_engine(url)\n\npassword_length = 12\ntoken_count = len(tokens)\n"
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


# ---------------------------------------------------------------- deny list


def test_builtin_deny_list() -> None:
    deny = DenyList.load(None)
    for path in [".env", "config/.env.production", "certs/server.pem", "tls/site.key", "keys/id_ed25519", "home/.ssh/config", "store.p12", ".npmrc"]:
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
