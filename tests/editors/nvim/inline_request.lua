-- Issue 2: plain Neovim (no plugin) attaches `nearcode lsp --stdio` with vim.lsp.start and gets
-- the model's inline completion with client:request_sync.
-- Run: nvim --headless --clean -l inline_request.lua NEARCODE FILE LINE COL OUT.json
local nearcode, file, line, col, out = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), arg[5]
local report = { steps = {} }

local function finish()
  local f = assert(io.open(out, "w"))
  f:write(vim.json.encode(report))
  f:close()
end

local ok, err = pcall(function()
  vim.cmd.edit(vim.fn.fnameescape(file))
  vim.bo.filetype = "python"
  local client_id = vim.lsp.start({
    name = "nearcode",
    cmd = { nearcode, "lsp", "--stdio" },
    root_dir = vim.fs.dirname(file),
  })
  assert(client_id, "vim.lsp.start returned nil")
  local client = assert(vim.lsp.get_client_by_id(client_id))
  report.initialized = vim.wait(20000, function()
    return client.initialized == true
  end, 50)
  assert(report.initialized, "server did not initialize within 20 s")
  report.attached = vim.lsp.buf_is_attached(0, client_id)
  report.inline_provider = client.server_capabilities.inlineCompletionProvider ~= nil
  report.offset_encoding = client.offset_encoding

  vim.api.nvim_win_set_cursor(0, { line + 1, col })
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = 1 }
  local t0 = vim.uv.hrtime()
  local res, req_err = client:request_sync("textDocument/inlineCompletion", params, 25000, 0)
  report.elapsed_ms = (vim.uv.hrtime() - t0) / 1e6
  report.request_error = req_err
  if res then
    report.error = res.err
    report.result = res.result
  end
  client:stop()
  vim.wait(3000, function()
    return client:is_stopped()
  end, 50)
end)
if not ok then
  report.lua_error = tostring(err)
end
finish()
