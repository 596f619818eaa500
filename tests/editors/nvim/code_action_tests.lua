-- Issue 5: plain Neovim picks nearcode's "Generate unit tests" code action the way a user does
-- (vim.lsp.buf.code_action with apply = true and a filter), and lets Neovim's own LSP client run
-- the command, apply the server's workspace/applyEdit (CreateFile + text edit) and show $/progress.
-- The generated test buffer is then saved (:write), as the user would, so the test can run it.
-- Run: nvim --headless --clean -l code_action_tests.lua NEARCODE FILE LINE COL OUT.json
local h = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), "harness.lua"))
local nearcode, file, line, col, out = h.args()
local report = { progress = {}, messages = {}, applied_edits = {}, asked = {} }
local TESTS_KIND = "refactor.nearcode.tests"

h.run(report, out, function()
  local done = false
  local default_apply_edit = vim.lsp.handlers["workspace/applyEdit"]
  local client = h.start(nearcode, file, {
    root_dir = vim.fs.root(file, { "pyproject.toml" }),
    handlers = {
      -- The command's answer: Neovim's default handler for it ignores the result.
      ["workspace/executeCommand"] = function(cmd_err, result)
        report.command_error = cmd_err and cmd_err.message or nil
        report.result = result
        done = true
      end,
      -- Neovim's own handler applies the edit; this only records what was asked and answered.
      ["workspace/applyEdit"] = function(e, params, ctx)
        local changes = {}
        for _, change in ipairs(params.edit.documentChanges or {}) do
          table.insert(changes, change.kind or "edit")
        end
        local answer = default_apply_edit(e, params, ctx)
        table.insert(report.applied_edits, { label = params.label, changes = changes, applied = answer.applied })
        return answer
      end,
      ["window/showMessage"] = function(_, params)
        table.insert(report.messages, { type = params.type, message = params.message })
      end,
      -- Neovim's own handler shows a vim.ui.select menu; the user here reads the tests and picks "Run".
      ["window/showMessageRequest"] = function(_, params)
        local seen = {}
        for _, p in ipairs(report.progress) do
          table.insert(seen, p.message or "")
        end
        table.insert(report.asked, { message = params.message, actions = params.actions, progress_so_far = seen })
        for _, action in ipairs(params.actions or {}) do
          if action.title == "Run" then
            return action
          end
        end
        return vim.NIL
      end,
    },
  })
  local source_buf = vim.api.nvim_get_current_buf()
  report.code_action_provider = client.server_capabilities.codeActionProvider ~= nil
  local provider = client.server_capabilities.executeCommandProvider
  report.commands = provider and provider.commands or {}

  h.record_progress(report.progress)
  -- What a code-action menu would list here (for the report only); also puts the cursor there.
  local _, titles = h.code_actions_at(client, line, col)
  report.titles = titles

  -- The user's path: one matching action, applied without a menu.
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action) return action.kind == TESTS_KIND end,
  })
  local function progress_ended()
    local last = report.progress[#report.progress]
    return last ~= nil and last.kind == "end"
  end
  report.finished = vim.wait(240000, function() return done and progress_ended() end, 50)
  report.source_lines = vim.api.nvim_buf_get_lines(source_buf, 0, -1, false)
  report.source_modified = vim.bo[source_buf].modified

  local test_file = report.result and report.result.testFile
  if type(test_file) == "string" then
    local path = vim.uri_to_fname(test_file)
    report.test_path = path
    report.on_disk_before_write = vim.uv.fs_stat(path) ~= nil
    local buf = vim.fn.bufnr(path)
    report.test_buffer = buf
    if buf > 0 then
      report.test_lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
      report.test_modified = vim.bo[buf].modified
      vim.api.nvim_buf_call(buf, function() vim.cmd("silent write") end)
      report.on_disk_after_write = vim.uv.fs_stat(path) ~= nil
    end
  end
  client:stop()
  vim.wait(3000, function() return client:is_stopped() end, 50)
end)
