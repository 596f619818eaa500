-- Ghost text for Neovim 0.10 / 0.11: asks the server for textDocument/inlineCompletion while
-- typing in insert mode, draws the suggestion with extmarks (first line as virtual text at the
-- cursor, the rest as virtual lines), accepts all of it, the next word or the next line.
local items = require("nearcode.items")
local util = require("nearcode.util")

local M = {}

M.ns = vim.api.nvim_create_namespace("nearcode")

---@class nearcode.Suggestion
---@field bufnr integer
---@field client_id integer
---@field item table         the server's InlineCompletionItem, as received
---@field row integer        0-based row of the cursor the ghost text starts at
---@field col integer        byte column of that cursor
---@field text string        what is still to be inserted at (row, col)
---@field tail_end integer[]|nil  {row, col} end of the item's range beyond the cursor
---@field consumed integer   UTF-16 units of insertText already in the buffer (typed or accepted)
---@field tick integer       b:changedtick the state matches
---@field extmark integer|nil

---@type nearcode.Suggestion|nil
local current = nil
---@type {client_id: integer, id: integer, bufnr: integer}|nil
local pending = nil
local accepting = false

---@type table  set by setup()
local cfg = { hl_group = "NearcodeSuggestion", virt_text_pos = "inline" }
---@type fun(bufnr: integer): vim.lsp.Client|nil
local get_client = function(_)
  return nil
end
---@type fun(): boolean
local is_enabled = function()
  return true
end

local function in_insert_mode()
  local mode = vim.api.nvim_get_mode().mode
  return mode:sub(1, 1) == "i"
end

--- True if a suggestion is drawn in the current buffer.
function M.visible()
  return current ~= nil and current.extmark ~= nil and current.bufnr == vim.api.nvim_get_current_buf()
end

--- The suggestion being shown (for tests and statuslines): {text = ..., item = ...} or nil.
function M.current()
  if not current then
    return nil
  end
  return { text = current.text, item = current.item, row = current.row, col = current.col }
end

local function cancel_pending()
  if pending then
    local client = vim.lsp.get_client_by_id(pending.client_id)
    if client then
      pcall(util.call, client, "cancel_request", pending.id)
    end
    pending = nil
  end
end

local function undraw()
  if current and current.extmark and vim.api.nvim_buf_is_valid(current.bufnr) then
    pcall(vim.api.nvim_buf_del_extmark, current.bufnr, M.ns, current.extmark)
  end
  if current then
    current.extmark = nil
  end
end

--- Remove the suggestion and cancel a request in flight.
function M.clear()
  cancel_pending()
  undraw()
  current = nil
end

local function draw()
  local s = assert(current)
  undraw()
  local lines = vim.split(s.text, "\n", { plain = true })
  local hl = cfg.hl_group
  local first_col = vim.fn.strdisplaywidth(
    (vim.api.nvim_buf_get_lines(s.bufnr, s.row, s.row + 1, false)[1] or ""):sub(1, s.col)
  )
  local opts = {
    virt_text = { { util.expand_tabs(lines[1], first_col), hl } },
    virt_text_pos = cfg.virt_text_pos,
    hl_mode = "combine",
    priority = 200,
  }
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      opts.virt_lines[#opts.virt_lines + 1] = { { util.expand_tabs(lines[i], 0), hl } }
    end
  end
  s.extmark = vim.api.nvim_buf_set_extmark(s.bufnr, M.ns, s.row, s.col, opts)
end

local function notify(s, method, params)
  local client = vim.lsp.get_client_by_id(s.client_id)
  if client then
    pcall(util.call, client, "notify", method, params)
  end
end

--- Show item `index` of `list` (the server's answer) at the cursor; false when it does not fit.
local function show(bufnr, client, list, index, row, col, explicit)
  local s = items.make_suggestion(bufnr, client, list[index], row, col)
  if not s then
    return false
  end
  M.clear()
  s.alternatives, s.index, s.explicit = list, index, explicit
  current = s
  draw()
  notify(s, "textDocument/didShowCompletion", { item = list[index] })
  vim.api.nvim_exec_autocmds("User", { pattern = "NearcodeSuggestion", modeline = false })
  return true
end

local function wrap(index, n)
  return (index - 1) % n + 1
end

local function on_result(bufnr, client, row, col, tick, result, explicit, step)
  if result == nil or result == vim.NIL or not in_insert_mode() or not is_enabled() then
    return
  end
  if vim.fn.pumvisible() == 1 then
    return -- the completion menu is open: do not draw over it
  end
  if vim.api.nvim_get_current_buf() ~= bufnr or vim.api.nvim_buf_get_changedtick(bufnr) ~= tick then
    return
  end
  local cur = vim.api.nvim_win_get_cursor(0)
  if cur[1] - 1 ~= row or cur[2] ~= col then
    return
  end
  -- Every item that fits here: the first is shown, <M-]> / <M-[> cycle through the others.
  local fitting = {}
  for _, raw in ipairs(result.items or result) do
    if items.make_suggestion(bufnr, client, raw, row, col) then
      fitting[#fitting + 1] = raw
    end
  end
  if #fitting > 0 then
    show(bufnr, client, fitting, step and wrap(1 + step, #fitting) or 1, row, col, explicit)
  end
end

--- Ask the server for a suggestion at the cursor now.
---@param trigger_kind? integer 1 = invoked, 2 = automatic
---@param step? integer  after the answer, show the item this many places from the first (cycling)
function M.request(trigger_kind, step)
  cancel_pending()
  if not is_enabled() or not in_insert_mode() then
    return
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local client = get_client(bufnr)
  if not client then
    return
  end
  local cur = vim.api.nvim_win_get_cursor(0)
  local row, col = cur[1] - 1, cur[2]
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding or "utf-16")
  params.context = { triggerKind = trigger_kind or 2 }
  local ok, id
  ok, id = util.call(client, "request", "textDocument/inlineCompletion", params, function(err, result)
    if pending and pending.id == id then
      pending = nil
    end
    if err then
      if err.code ~= -32800 then -- RequestCancelled
        vim.schedule(function()
          vim.notify_once("nearcode: " .. (err.message or vim.inspect(err)), vim.log.levels.WARN)
        end)
      end
      return
    end
    on_result(bufnr, client, row, col, tick, result, trigger_kind == 1, step)
  end, bufnr)
  if ok and id then
    pending = { client_id = client.id, id = id, bufnr = bufnr }
  end
end

--- Ask after a keystroke: the request before is cancelled and a new one goes out at once. The
--- server is the one place that waits (its debounce adapts to typing speed; a keystroke it can
--- answer from its typing cache or a running request costs no model call).
function M.schedule_request()
  cancel_pending()
  if not is_enabled() then
    return
  end
  vim.schedule(function()
    M.request(2)
  end)
end

--- Insert `part` of the suggestion at its anchor (the cursor) and move the cursor after it.
local function insert(s, part, replace_tail)
  local lines = vim.split(part, "\n", { plain = true })
  local er, ec = s.row, s.col
  if replace_tail and s.tail_end then
    er, ec = s.tail_end[1], s.tail_end[2]
  end
  accepting = true
  vim.api.nvim_buf_set_text(s.bufnr, s.row, s.col, er, ec, lines)
  local row = s.row + #lines - 1
  local col = (#lines == 1 and s.col or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { row + 1, col })
  accepting = false
  return row, col
end

--- Accept the suggestion: "all", "word" or "line". Returns false when there is none.
---@param what? "all"|"word"|"line"
---@return boolean
function M.accept(what)
  if not M.visible() then
    return false
  end
  local s = assert(current)
  what = what or "all"
  local part = s.text
  if what == "word" then
    part = items.next_word(s.text)
  elseif what == "line" then
    part = items.next_line(s.text)
  end
  if part == "" then
    part = s.text
  end
  if what ~= "all" and part ~= s.text then
    -- Partial: insert, tell the server, keep showing the rest.
    local row, col = insert(s, part, false)
    s.consumed = s.consumed + util.utf16_len(part)
    s.text = s.text:sub(#part + 1)
    s.row, s.col = row, col
    s.tick = vim.api.nvim_buf_get_changedtick(s.bufnr)
    draw()
    notify(s, "textDocument/didPartiallyAcceptCompletion", {
      item = s.item,
      acceptedLength = s.consumed,
      acceptKind = what, -- nearcode's addition: the server's insight counts words and lines apart
    })
    return true
  end
  -- Full acceptance: insert everything, replace the rest of the item's range, run its command.
  -- (A snippet item is inserted as its plain text: the server sends plain text.)
  undraw()
  cancel_pending()
  current = nil
  insert(s, s.text, true)
  local cmd = s.item.command
  if cmd then
    local client = vim.lsp.get_client_by_id(s.client_id)
    if client then
      util.call(client, "request", "workspace/executeCommand", {
        command = cmd.command,
        arguments = cmd.arguments,
      }, function() end, s.bufnr)
    end
  end
  return true
end

--- Show the next (`step` 1) or previous (-1) of the server's suggestions for this place. With
--- only one so far, ask again explicitly: the server answers an explicit request with up to three
--- distinct ones (VS Code asks the same way when its toolbar cycles). False when none is shown.
---@param step integer
---@return boolean
function M.cycle(step)
  if not M.visible() then
    return false
  end
  local s = assert(current)
  local list = s.alternatives or { s.item }
  if #list <= 1 then
    if not s.explicit then
      M.request(1, step)
    end
    return true
  end
  local client = vim.lsp.get_client_by_id(s.client_id)
  local cur = vim.api.nvim_win_get_cursor(0)
  for k = 1, #list - 1 do
    -- The next one that still fits: after typed characters, only those that start with them.
    if client and show(s.bufnr, client, list, wrap(s.index + step * k, #list), cur[1] - 1, cur[2], s.explicit) then
      return true
    end
  end
  return true
end

--- Which of the suggestions is shown and how many there are: index, count (for statuslines).
function M.position()
  if not current then
    return nil
  end
  return current.index or 1, #(current.alternatives or { current.item })
end

--- After a text change in insert mode: keep the suggestion if the user typed what it shows,
--- else drop it and ask again.
function M.on_text_changed()
  local bufnr = vim.api.nvim_get_current_buf()
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local s = current
  if s and s.bufnr == bufnr then
    if tick == s.tick then
      return -- our own edit (partial accept), state already matches
    end
    local cur = vim.api.nvim_win_get_cursor(0)
    local row, col = cur[1] - 1, cur[2]
    local first = s.text:match("^[^\n]*")
    if row == s.row and col > s.col and col - s.col <= #first then
      local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
      local typed = line:sub(s.col + 1, col)
      if typed == s.text:sub(1, #typed) and #typed < #s.text then
        s.consumed = s.consumed + util.utf16_len(typed)
        s.text = s.text:sub(#typed + 1)
        s.col = col
        s.tick = tick
        if not s.text:match("^%s*$") then
          draw()
          return
        end
      end
    end
  end
  M.clear()
  M.schedule_request()
end

--- After the cursor moved in insert mode without a text change: drop the suggestion.
function M.on_cursor_moved()
  local s = current
  if not s or accepting then
    return
  end
  if vim.api.nvim_buf_get_changedtick(s.bufnr) ~= s.tick then
    return -- a text change: on_text_changed decides
  end
  local cur = vim.api.nvim_win_get_cursor(0)
  if cur[1] - 1 ~= s.row or cur[2] ~= s.col or vim.api.nvim_get_current_buf() ~= s.bufnr then
    M.clear()
  end
end

---@param opts table  the plugin's configuration
---@param client_for fun(bufnr: integer): vim.lsp.Client|nil
---@param enabled fun(): boolean
function M.setup(opts, client_for, enabled)
  cfg = opts
  get_client = client_for
  is_enabled = enabled
  vim.api.nvim_set_hl(0, cfg.hl_group, { link = "Comment", default = true })

  local group = vim.api.nvim_create_augroup("nearcode.suggestion", { clear = true })
  vim.api.nvim_create_autocmd("TextChangedI", {
    group = group,
    callback = function(ev)
      if get_client(ev.buf) then
        M.on_text_changed()
      end
    end,
  })
  vim.api.nvim_create_autocmd("InsertEnter", {
    group = group,
    callback = function(ev)
      if get_client(ev.buf) then
        M.schedule_request() -- e.g. `o` on a new line inside a block
      end
    end,
  })
  vim.api.nvim_create_autocmd("CursorMovedI", { group = group, callback = M.on_cursor_moved })
  vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave", "TextChangedP" }, {
    group = group,
    callback = function()
      M.clear()
    end,
  })
  vim.api.nvim_create_autocmd("ModeChanged", {
    group = group,
    pattern = "i:*",
    callback = function()
      M.clear()
    end,
  })

  -- Any other key clears the suggestion: keys that neither type nor move (<C-x>, <C-r>, ...)
  -- would otherwise leave stale ghost text. Printable keys are left to on_text_changed
  -- (typing what the suggestion shows keeps it), the plugin's own keys to their mappings.
  local own = {}
  for _, lhs in pairs(cfg.keys or {}) do
    if type(lhs) == "string" and lhs ~= "" then
      own[vim.keycode(lhs)] = true
    end
  end
  vim.on_key(function(key, typed)
    if not current or accepting then
      return
    end
    local k = (typed and typed ~= "") and typed or key
    if own[k] or own[key] then
      return
    end
    if #k == 1 and k:byte() >= 32 and k:byte() ~= 127 then
      return
    end
    if k:byte(1) == 0x80 then
      return -- special keys (arrows, mouse, <Cmd>...): the cursor and text autocmds decide
    end
    -- Only hide it: a request the key's text change schedules must survive.
    undraw()
    current = nil
  end, M.ns)
end

return M
