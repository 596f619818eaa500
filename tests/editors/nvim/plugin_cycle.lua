-- Alternatives in the nearcode plugin, in a real Neovim: <M-\> asks explicitly (the server answers
-- with up to three distinct suggestions), <M-]> / <M-[> cycle through them, <Tab> accepts the one
-- shown. A child Neovim (--embed) reads the typed keys, as in plugin_ghost.lua.
-- Run: nvim --headless --clean -l plugin_cycle.lua PLUGIN_DIR NEARCODE FILE LINE OUT.json
local plugin_dir, nearcode, file, line, out = arg[1], arg[2], arg[3], tonumber(arg[4]), arg[5]
local report = { attempts = {} }

local child = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), "embed.lua")).child()
local lua, input, ghost = child.lua, child.input, child.ghost
local function position()
  return lua([[local i, n = require("nearcode.suggestion").position(); return i and { i, n } or vim.NIL]])
end
local function index()
  local p = position()
  return type(p) == "table" and p[1] or 0
end

local ok, err = pcall(function()
  child.open(plugin_dir, nearcode, file)
  report.attached = child.attached(20000)
  assert(report.attached, "the plugin did not attach an initialized nearcode client within 20 s")
  report.keys = lua([[
    local maps = {}
    for _, m in ipairs(vim.api.nvim_get_keymap("i")) do maps[#maps + 1] = m.lhs end
    return maps
  ]])

  lua("vim.api.nvim_win_set_cursor(0, { ... })", line + 1, 0)
  input("A")
  -- Sampling is random: a place where the model could say many things, asked up to three times.
  for attempt = 1, 3 do
    lua([[require("nearcode.suggestion").clear()]])
    input("<M-\\>")
    local shown = vim.wait(90000, function()
      return index() > 0
    end, 100)
    local p = position()
    report.attempts[attempt] = { shown = shown, position = p, ghost = ghost() }
    if type(p) == "table" and p[2] >= 2 then
      break
    end
  end
  local p = position()
  if type(p) ~= "table" or p[2] < 2 then
    return
  end
  report.count = p[2]
  report.first = ghost()
  input("<M-]>")
  vim.wait(3000, function()
    return index() == 2
  end, 50)
  report.after_next = { position = position(), ghost = ghost() }
  input("<M-[>")
  vim.wait(3000, function()
    return index() == 1
  end, 50)
  report.after_prev = { position = position(), ghost = ghost() }
  input("<M-]>")
  vim.wait(3000, function()
    return index() == 2
  end, 50)
  report.line_before = lua("return vim.api.nvim_get_current_line()")
  report.accepting = ghost()
  input("<Tab>")
  vim.wait(3000, function()
    return ghost() == vim.NIL
  end, 50)
  report.lines_after = lua("return vim.api.nvim_buf_get_lines(0, 0, -1, false)")
  input("<Esc>")
  report.server_status = child.server_status()
end)
child.finish(report, ok, err, out)
