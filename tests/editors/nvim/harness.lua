-- What the headless Neovim scripts share: arguments, opening the file, starting nearcode with
-- Neovim's own client, recording $/progress, asking for code actions, and writing the report.
-- Load with: local h = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), "harness.lua"))
local M = {}

--- NEARCODE FILE LINE COL OUT.json, as every script is run with.
function M.args()
  return arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), arg[5]
end

--- Open `file` as Python, start `nearcode lsp --stdio` on it and wait for initialize.
function M.start(nearcode, file, opts)
  opts = opts or {}
  vim.cmd.edit(vim.fn.fnameescape(file))
  vim.bo.filetype = "python"
  local client_id = vim.lsp.start({
    name = "nearcode",
    cmd = { nearcode, "lsp", "--stdio" },
    root_dir = opts.root_dir or vim.fs.dirname(file),
    handlers = opts.handlers,
  })
  assert(client_id, "vim.lsp.start returned nil")
  local client = assert(vim.lsp.get_client_by_id(client_id))
  assert(vim.wait(20000, function() return client.initialized == true end, 50), "no initialize in 20 s")
  return client, client_id
end

--- Append every $/progress value to `into`, except the workspace index's own scan progress
--- ("nearcode: indexing", which may run at the same time when the project folder is new to the daemon).
function M.record_progress(into)
  local indexing = {}
  vim.api.nvim_create_autocmd("LspProgress", {
    callback = function(ev)
      local token, value = ev.data.params.token, ev.data.params.value
      if value.kind == "begin" and value.title == "nearcode: indexing" then
        indexing[token] = true
      end
      if not indexing[token] then
        table.insert(into, { kind = value.kind, message = value.message, title = value.title })
      end
    end,
  })
end

--- The code actions offered at (line, col), zero-based line, and their titles.
function M.code_actions_at(client, line, col)
  vim.api.nvim_win_set_cursor(0, { line + 1, col })
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  params.context = { diagnostics = {} }
  local res = client:request_sync("textDocument/codeAction", params, 10000, 0)
  assert(res and not res.err, "codeAction failed: " .. vim.inspect(res))
  local titles = {}
  for _, action in ipairs(res.result or {}) do
    table.insert(titles, action.title)
  end
  return res.result or {}, titles
end

--- Run `body`, record a Lua error in the report instead of dying, and write the report to `out`.
function M.run(report, out, body)
  local ok, err = pcall(body)
  if not ok then
    report.lua_error = tostring(err)
  end
  local f = assert(io.open(out, "w"))
  f:write(vim.json.encode(report))
  f:close()
end

return M
