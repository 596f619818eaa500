-- Issue 2: plain Neovim (no plugin) attaches `nearcode lsp --stdio` with vim.lsp.start and gets
-- the model's inline completion with client:request_sync.
-- Run: nvim --headless --clean -l inline_request.lua NEARCODE FILE LINE COL OUT.json
local h = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), "harness.lua"))
local nearcode, file, line, col, out = h.args()
local report = { steps = {} }

h.run(report, out, function()
  local client, client_id = h.start(nearcode, file)
  report.initialized = true
  report.attached = vim.lsp.buf_is_attached(0, client_id)
  report.inline_provider = client.server_capabilities.inlineCompletionProvider ~= nil
  report.offset_encoding = client.offset_encoding

  vim.api.nvim_win_set_cursor(0, { line + 1, col })
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = 1 }
  local t0 = vim.uv.hrtime()
  -- An explicit request: the server also computes its alternatives (at most as long again).
  local res, req_err = client:request_sync("textDocument/inlineCompletion", params, 60000, 0)
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
