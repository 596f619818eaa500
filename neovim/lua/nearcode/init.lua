-- nearcode for Neovim: local code completion as ghost text, served by `nearcode lsp --stdio`.
--
--   require("nearcode").setup({ ... })   -- see README.md for the options
local util = require("nearcode.util")
local protocol = require("nearcode.protocol") -- generated from the server's models

local M = {}

---@class nearcode.Config
local defaults = {
  -- How to start the language server.
  cmd = { "nearcode", "lsp", "--stdio" },
  cmd_env = nil, ---@type table<string,string>|nil
  -- Files that mark a project root (else the current directory).
  root_markers = { ".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml" },
  -- Filetypes to attach to: nil = every filetype of a normal buffer, or a list.
  filetypes = nil, ---@type string[]|nil
  exclude_filetypes = { "help", "gitcommit", "gitrebase", "hgcommit", "svn", "cvs", "TelescopePrompt" },
  -- Keys in insert mode; false disables one. Without a suggestion a key keeps its own meaning.
  keys = {
    accept = "<Tab>",
    accept_word = "<M-Right>",
    accept_line = "<M-Down>",
    dismiss = "<C-]>",
    trigger = "<M-\\>",
    next = "<M-]>", -- the next of several suggestions (asks for more when there is one)
    prev = "<M-[>",
  },
  hl_group = "NearcodeSuggestion", -- linked to Comment unless you define it
  virt_text_pos = "inline", -- "inline" (pushes the rest of the line) or "overlay"
  -- On Neovim 0.12+ use the built-in vim.lsp.inline_completion instead of our own drawing.
  native = true,
  -- Server settings (docs/protocol.md; keys and defaults in nearcode/protocol.lua, generated from
  -- the server's model). Sent at start and on :NearcodeToggle. Unknown keys are reported.
  settings = {},
  enabled = true,
}

M.config = vim.deepcopy(defaults)
M.status = nil ---@type table|nil  last nearcode/status notification
local enabled = true
local warned_missing = false

local function use_native()
  return M.config.native and vim.fn.has("nvim-0.12") == 1 and vim.lsp.inline_completion ~= nil
end

---@param bufnr integer
---@return vim.lsp.Client|nil
function M.client(bufnr)
  local clients = vim.lsp.get_clients({ bufnr = bufnr, name = "nearcode" })
  return clients[1]
end

local function server_settings()
  local settings = vim.tbl_extend("force", M.config.settings or {}, { enable = enabled })
  if M.config.debounce_ms then -- older configs: the server is the one place that waits
    settings.debounceMs = settings.debounceMs or M.config.debounce_ms
  end
  for key in pairs(settings) do
    if protocol.server_settings[key] == nil then
      vim.notify_once(("nearcode: unknown server setting %q (see lua/nearcode/protocol.lua)"):format(key), vim.log.levels.WARN)
    end
  end
  return settings
end

local function wanted(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= "" then
    return false
  end
  local ft = vim.bo[bufnr].filetype
  if ft == "" or vim.api.nvim_buf_get_name(bufnr) == "" then
    return false -- the server needs a file (URI) and a language
  end
  if vim.tbl_contains(M.config.exclude_filetypes or {}, ft) then
    return false
  end
  if M.config.filetypes then
    return vim.tbl_contains(M.config.filetypes, ft)
  end
  return true
end

local warned_remote = false

local function on_status(_, result)
  M.status = result
  if M.privacy(result) == "remote" and not warned_remote then
    warned_remote = true
    vim.schedule(function()
      vim.notify(("nearcode: the daemon sends your code to %s: it leaves this machine"):format(
        result.promptDestination or "a remote server"), vim.log.levels.WARN)
    end)
  end
  vim.schedule(function()
    vim.api.nvim_exec_autocmds("User", { pattern = "NearcodeStatus", modeline = false })
  end)
end

--- Start the server (once) and attach it to `bufnr`.
---@param bufnr? integer
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if not wanted(bufnr) or M.client(bufnr) then
    return
  end
  local cmd = M.config.cmd
  if type(cmd) == "table" and vim.fn.executable(cmd[1]) ~= 1 then
    if not warned_missing then
      warned_missing = true
      vim.notify(
        ("nearcode: %q not found. Install nearcode (`make run` in its checkout, then put its "
          .. ".venv/bin on PATH) or set cmd in require('nearcode').setup()."):format(cmd[1]),
        vim.log.levels.WARN
      )
    end
    return
  end
  local root = vim.fs.root(bufnr, M.config.root_markers) or vim.fn.getcwd()
  local settings = server_settings()
  vim.lsp.start({
    name = "nearcode",
    cmd = cmd,
    cmd_env = M.config.cmd_env,
    root_dir = root,
    init_options = settings,
    -- Tell the server we show ghost text, so it does not also answer textDocument/completion
    -- popups (nvim-cmp, blink) with a second model call.
    capabilities = vim.tbl_deep_extend("force", vim.lsp.protocol.make_client_capabilities(), {
      textDocument = { inlineCompletion = { dynamicRegistration = false } },
    }),
    settings = { nearcode = settings },
    handlers = { [protocol.status_notification] = on_status },
    on_attach = function(_, buf)
      if use_native() then
        vim.lsp.inline_completion.enable(enabled, { bufnr = buf }) -- off by default per buffer
      end
    end,
  }, {
    bufnr = bufnr,
    -- one server for all buffers: it talks to one shared daemon anyway
    reuse_client = function(client, config)
      return client.name == config.name
    end,
  })
end

--- Accept "all", "word" or "line" of the suggestion. Returns false when none is shown.
---@param what? "all"|"word"|"line"
function M.accept(what)
  if use_native() then
    if (what or "all") ~= "all" then
      return false
    end
    return vim.lsp.inline_completion.get() ~= false
  end
  return require("nearcode.suggestion").accept(what)
end

--- Is a suggestion shown in the current buffer?
function M.visible()
  if use_native() then
    local ns = vim.api.nvim_get_namespaces()["nvim.lsp.inline_completion"]
    return ns ~= nil and #vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { limit = 1 }) > 0
  end
  return require("nearcode.suggestion").visible()
end

function M.dismiss()
  if not use_native() then
    require("nearcode.suggestion").clear()
  end
end

--- Show the next (1) or previous (-1) suggestion for this place. False when none is shown.
---@param step integer
function M.cycle(step)
  if use_native() then
    if vim.lsp.inline_completion.select then
      vim.lsp.inline_completion.select({ count = step })
      return true
    end
    return false
  end
  return require("nearcode.suggestion").cycle(step)
end

--- Ask for a suggestion now.
function M.trigger()
  if use_native() then
    vim.lsp.inline_completion.get()
  else
    require("nearcode.suggestion").request(1)
  end
end

local function map_keys()
  local keys = M.config.keys or {}
  local function expr_map(lhs, what)
    if not lhs or lhs == "" then
      return
    end
    vim.keymap.set("i", lhs, function()
      if enabled and M.visible() and (what == "all" or not use_native()) then
        return ("<Cmd>lua require('nearcode').accept(%q)<CR>"):format(what)
      end
      return lhs
    end, { expr = true, replace_keycodes = true, silent = true, desc = "nearcode: accept " .. what })
  end
  expr_map(keys.accept, "all")
  expr_map(keys.accept_word, "word")
  expr_map(keys.accept_line, "line")
  if keys.dismiss and keys.dismiss ~= "" then
    vim.keymap.set("i", keys.dismiss, function()
      if not use_native() and M.visible() then
        return "<Cmd>lua require('nearcode').dismiss()<CR>"
      end
      return keys.dismiss
    end, { expr = true, replace_keycodes = true, silent = true, desc = "nearcode: dismiss" })
  end
  for lhs, step in pairs({ [keys.next or ""] = 1, [keys.prev or ""] = -1 }) do
    if lhs ~= "" then
      vim.keymap.set("i", lhs, function()
        if enabled and M.visible() then
          return ("<Cmd>lua require('nearcode').cycle(%d)<CR>"):format(step)
        end
        return lhs
      end, { expr = true, replace_keycodes = true, silent = true, desc = "nearcode: other suggestion" })
    end
  end
  if keys.trigger and keys.trigger ~= "" then
    vim.keymap.set("i", keys.trigger, function()
      M.trigger()
    end, { silent = true, desc = "nearcode: suggest" })
  end
end

--- Turn completions on or off (globally); tells the server too.
---@param on? boolean  default: the opposite of now
function M.toggle(on)
  if on == nil then
    on = not enabled
  end
  enabled = on
  if not enabled then
    M.dismiss()
  end
  for _, client in ipairs(vim.lsp.get_clients({ name = "nearcode" })) do
    local settings = server_settings()
    client.settings = { nearcode = settings }
    pcall(util.call, client, "notify", "workspace/didChangeConfiguration", { settings = { nearcode = settings } })
    if use_native() then
      for buf in pairs(client.attached_buffers) do
        vim.lsp.inline_completion.enable(enabled, { bufnr = buf })
      end
    end
  end
  vim.notify("nearcode: completions " .. (enabled and "on" or "off"))
end

function M.is_enabled()
  return enabled
end

--- Where code goes, from the server's status (which asks the daemon, never assumes):
--- "remote" (the daemon sends every prompt off this machine), "local", "cloud-allowed", "unknown".
function M.privacy(s)
  s = s or M.status
  if not s then
    return "unknown"
  end
  if s.codeLeavesMachine == true then
    return "remote"
  elseif s.localOnly == true then
    return "local"
  elseif s.cloudAllowed == true or (s.cloudAllowed == nil and s.localOnly == false) then
    return "cloud-allowed"
  end
  return "unknown"
end

local PRIVACY_WORDS = { remote = "REMOTE", ["local"] = "local", ["cloud-allowed"] = "cloud-allowed", unknown = "" }

--- A short text for a statusline: "nearcode ready 412ms local", or "nearcode ready 412ms REMOTE"
--- when the daemon sends prompts off this machine.
function M.statusline()
  if not enabled then
    return "nearcode off"
  end
  local s = M.status
  if not s then
    return "nearcode"
  end
  local text = "nearcode " .. (s.state or "?")
  if type(s.lastLatencyMs) == "number" then
    text = text .. (" %dms"):format(s.lastLatencyMs)
  end
  local word = PRIVACY_WORDS[M.privacy(s)]
  if word ~= "" then
    text = text .. " " .. word
  end
  return text
end

--- Lines shown by :NearcodeStatus.
function M.status_lines()
  local s = M.status
  local lines = { "nearcode: completions " .. (enabled and "on" or "off") }
  local client = vim.lsp.get_clients({ name = "nearcode" })[1]
  if not client then
    lines[#lines + 1] = "server: not running (cmd: " .. table.concat(M.config.cmd, " ") .. ")"
  end
  if not s then
    lines[#lines + 1] = "no status from the server yet"
    return lines
  end
  lines[#lines + 1] = ("state: %s"):format(s.state or "?")
  lines[#lines + 1] = ("engine: %s  model: %s"):format(s.engine or "?", s.model or "?")
  if type(s.lastLatencyMs) == "number" then
    lines[#lines + 1] = ("last completion: %d ms"):format(s.lastLatencyMs)
  end
  local privacy = M.privacy(s)
  if privacy == "remote" then
    lines[#lines + 1] = ("CODE LEAVES THIS MACHINE: the daemon sends prompts to %s"):format(s.promptDestination or "?")
  elseif privacy == "local" then
    lines[#lines + 1] = "local only: yes (no code leaves this machine)"
  elseif privacy == "cloud-allowed" then
    lines[#lines + 1] = "local only: no (cloud allowed: explicit cloud actions may send a selection)"
  end
  if s.message and s.message ~= "" then
    lines[#lines + 1] = s.message
  end
  return lines
end

function M.show_status()
  vim.notify(table.concat(M.status_lines(), "\n"))
end

---@param opts? nearcode.Config
function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  for key, value in pairs(opts or {}) do
    if type(value) == "table" and next(value) ~= nil and vim.islist(value) then
      M.config[key] = value -- lists (cmd, filetypes, ...) are replaced, not merged
    end
  end
  enabled = M.config.enabled ~= false
  if not use_native() then
    require("nearcode.suggestion").setup(M.config, M.client, function()
      return enabled
    end)
  end
  map_keys()
  require("nearcode.commands").create()

  local group = vim.api.nvim_create_augroup("nearcode", { clear = true })
  vim.api.nvim_create_autocmd({ "FileType", "BufEnter" }, {
    group = group,
    callback = function(ev)
      M.attach(ev.buf)
      if ev.event == "BufEnter" and enabled then
        require("nearcode.context").focus(ev.buf)
      end
    end,
  })
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    M.attach(vim.api.nvim_win_get_buf(win))
  end
end

return M
