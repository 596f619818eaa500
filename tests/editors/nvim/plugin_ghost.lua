-- Issue 3: the nearcode plugin in a real Neovim. This script (run with -l) is the driver: it
-- starts a second Neovim as a child (--embed, so it runs its normal event loop and reads typed
-- keys), loads the plugin there through 'runtimepath', types into a buffer with nvim_input,
-- waits for the suggestion's extmarks, accepts a word then the rest, and records what it saw.
-- Run: nvim --headless --clean -l plugin_ghost.lua PLUGIN_DIR NEARCODE FILE LINE OUT.json
local plugin_dir, nearcode, file, line, out = arg[1], arg[2], arg[3], tonumber(arg[4]), arg[5]
local report = {}

local child = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), "embed.lua")).child()
local lua, input, ghost = child.lua, child.input, child.ghost

local function wait(ms, pred)
  return vim.wait(ms, pred, 50)
end
local function buffer_lines()
  return lua("return vim.api.nvim_buf_get_lines(0, 0, -1, false)")
end
local function marks()
  return lua([[
    return vim.api.nvim_buf_get_extmarks(0, require("nearcode.suggestion").ns, 0, -1, { details = true })
  ]])
end
local ok, err = pcall(function()
  child.open(plugin_dir, nearcode, file)
  report.commands = lua([[return { vim.fn.exists(":NearcodeStatus"), vim.fn.exists(":NearcodeToggle"),
    vim.fn.exists(":NearcodeContext") }]])
  report.attached = child.attached(20000)
  assert(report.attached, "the plugin did not attach an initialized nearcode client within 20 s")
  report.native = lua([[return vim.lsp.inline_completion ~= nil]])

  -- Type at the end of the line, as a user would: A, then a space.
  lua("vim.api.nvim_win_set_cursor(0, { ... })", line + 1, 0)
  input("A ")
  report.shown = wait(25000, function()
    return #marks() > 0
  end)
  report.mode = lua("return vim.api.nvim_get_mode().mode")
  report.marks = marks()
  report.ghost = ghost()
  report.line_before = buffer_lines()[line + 1]
  if not report.shown then
    return
  end

  -- Accept the next word: it lands in the buffer and the rest stays shown. (Skipped when the
  -- suggestion is a single word, as when a busy machine cut the model short.)
  local g = report.ghost
  local word = g:match("^%s*[%w_]+") or g:match("^%s*[^%w_%s]+") or g
  report.partial = #word < #(g:gsub("%s+$", ""))
  if report.partial then
    local before = buffer_lines()[line + 1]
    input("<M-Right>")
    wait(3000, function()
      return buffer_lines()[line + 1] ~= before
    end)
    report.line_after_word = buffer_lines()[line + 1]
    report.ghost_after_word = ghost()
    report.marks_after_word = marks()
  end

  -- Accept the rest with Tab.
  input("<Tab>")
  local shown_before_tab = ghost()
  wait(3000, function()
    return ghost() ~= shown_before_tab
  end)
  report.lines_after_accept = buffer_lines()

  -- Leaving insert mode clears any ghost text.
  input("<Esc>")
  wait(2000, function()
    return #marks() == 0
  end)
  report.marks_after_esc = marks()
  report.mode_after_esc = lua("return vim.api.nvim_get_mode().mode")
  report.status_lines = lua([[return require("nearcode").status_lines()]])
  -- The server's counters (shown / accepted / partially accepted), through its command.
  report.server_status = child.server_status()
  -- :NearcodeContext opens what the last completion was given in a scratch buffer.
  local file_buf = lua("return vim.api.nvim_get_current_buf()")
  lua("vim.cmd('NearcodeContext')")
  wait(10000, function()
    return lua("return vim.api.nvim_get_current_buf()") ~= file_buf
  end)
  report.context_buffer = lua([[return { name = vim.api.nvim_buf_get_name(0), scratch = vim.bo.buftype == "nofile",
    lines = vim.api.nvim_buf_get_lines(0, 0, -1, false) }]])
end)
child.finish(report, ok, err, out)
