-- Issue 5: plain Neovim asks nearcode for code actions at a function, runs "Generate docstring",
-- and lets Neovim's own workspace/applyEdit and $/progress handling do the rest.
-- Run: nvim --headless --clean -l code_action_docstring.lua NEARCODE FILE LINE COL OUT.json
local h = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), "harness.lua"))
local nearcode, file, line, col, out = h.args()
local report = { progress = {}, buffer_changes = 0 }

h.run(report, out, function()
  local client = h.start(nearcode, file)
  report.code_action_provider = client.server_capabilities.codeActionProvider ~= nil
  h.record_progress(report.progress)
  vim.api.nvim_buf_attach(0, false, {
    on_lines = function()
      report.buffer_changes = report.buffer_changes + 1
    end,
  })

  local actions, titles = h.code_actions_at(client, line, col)
  report.titles = titles
  local chosen
  for _, action in ipairs(actions) do
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
