-- Issue 5: plain Neovim asks nearcode for code actions at a function, runs "Generate docstring",
-- and lets Neovim's own workspace/applyEdit and $/progress handling do the rest.
-- Run: nvim --headless --clean -l code_action_docstring.lua NEARCODE FILE LINE COL OUT.json
local nearcode, file, line, col, out = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), arg[5]
local report = { progress = {}, buffer_changes = 0 }

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
  assert(vim.wait(20000, function() return client.initialized == true end, 50), "no initialize in 20 s")
  report.code_action_provider = client.server_capabilities.codeActionProvider ~= nil

  vim.api.nvim_create_autocmd("LspProgress", {
    callback = function(ev)
      local value = ev.data.params.value
      table.insert(report.progress, { kind = value.kind, message = value.message, title = value.title })
    end,
  })
  vim.api.nvim_buf_attach(0, false, {
    on_lines = function()
      report.buffer_changes = report.buffer_changes + 1
    end,
  })

  vim.api.nvim_win_set_cursor(0, { line + 1, col })
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  params.context = { diagnostics = {} }
  local res = client:request_sync("textDocument/codeAction", params, 10000, 0)
  assert(res and not res.err, "codeAction failed: " .. vim.inspect(res))
  report.titles = {}
  local chosen
  for _, action in ipairs(res.result or {}) do
    table.insert(report.titles, action.title)
    if action.kind == "refactor.rewrite.nearcode.docstring" then
      chosen = action
    end
  end
  assert(chosen, "no docstring action offered")

  local done = false
  client:request("workspace/executeCommand", chosen.command, function(cmd_err, result)
    report.command_error = cmd_err and cmd_err.message or nil
    report.result = result
    done = true
  end, 0)
  report.finished = vim.wait(240000, function() return done end, 50)
  report.lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  client:stop()
  vim.wait(3000, function() return client:is_stopped() end, 50)
end)
if not ok then
  report.lua_error = tostring(err)
end
finish()
