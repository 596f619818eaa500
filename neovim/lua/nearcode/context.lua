-- :NearcodeContext: what the last completion in the current buffer was given (each part of the
-- prompt with its file, lines, tokens and why it was kept, cut or dropped; the budget by part;
-- then the prompt itself), in a scratch buffer. And the focus notification that lets the server
-- read a buffer's prompt ahead when you enter it.
local util = require("nearcode.util")
local protocol = require("nearcode.protocol") -- generated from the server's models

local M = {}

--- The scratch buffer's lines for a nearcode.showContext result.
---@param result table|nil
---@return string[]
function M.lines(result)
  if type(result) ~= "table" or not result.available then
    local reason = type(result) == "table" and result.reason or nil
    return { "nearcode context", "", reason or "No completion has been asked for in this buffer yet." }
  end
  local lines = vim.split((result.text or ""):gsub("\n$", ""), "\n", { plain = true })
  if type(result.prompt) == "string" and result.prompt ~= "" then
    vim.list_extend(lines, { "", "--- the prompt the engine received ---" })
    vim.list_extend(lines, vim.split(result.prompt, "\n", { plain = true }))
  end
  return lines
end

--- Open the report in a scratch buffer in a split.
---@param bufnr? integer
function M.show(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = require("nearcode").client(bufnr)
  if not client then
    vim.notify("nearcode: the server is not attached to this buffer", vim.log.levels.WARN)
    return
  end
  local params = { command = protocol.commands.showContext, arguments = { { uri = vim.uri_from_bufnr(bufnr) } } }
  util.call(client, "request", "workspace/executeCommand", params, function(err, result)
    vim.schedule(function()
      if err then
        vim.notify("nearcode: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
        return
      end
      M.open(M.lines(result))
    end)
  end, bufnr)
end

--- A scratch buffer holding `lines`, in a new split; returns its number.
---@param lines string[]
---@return integer
function M.open(lines)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.bo[buf].bufhidden = "wipe"
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.api.nvim_buf_set_name(buf, ("nearcode://context/%d"):format(buf))
  vim.cmd("botright split")
  vim.api.nvim_win_set_buf(0, buf)
  return buf
end

--- Tell the server the buffer is in front (with the cursor), so it reads its prompt ahead.
---@param bufnr integer
function M.focus(bufnr)
  local client = require("nearcode").client(bufnr)
  if not client or vim.api.nvim_get_current_buf() ~= bufnr then
    return
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding or "utf-16")
  pcall(util.call, client, "notify", protocol.focus_notification, params)
end

return M
