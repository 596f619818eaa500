-- Items of the server's answer as suggestions at the cursor, and the parts of a suggestion an
-- accept-next-word / accept-next-line takes. No state: suggestion.lua keeps that.
local util = require("nearcode.util")

local M = {}

--- Turn the server's item into a suggestion anchored at the cursor, or nil if it does not fit.
function M.make_suggestion(bufnr, client, raw, row, col)
  local text = util.insert_text(raw.insertText)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
  local consumed = 0
  local tail_end = nil
  if raw.range then
    local enc = client.offset_encoding or "utf-16"
    local sr, er = raw.range.start.line, raw.range["end"].line
    if sr ~= row then
      return nil
    end
    local sc = util.byte_col(line, raw.range.start.character, enc)
    if sc > col then
      return nil
    end
    -- The item replaces the range: the part of it before the cursor must already be there.
    local before = line:sub(sc + 1, col)
    if text:sub(1, #before) ~= before then
      return nil
    end
    consumed = util.utf16_len(before)
    text = text:sub(#before + 1)
    local eline = er == row and line or (vim.api.nvim_buf_get_lines(bufnr, er, er + 1, false)[1] or "")
    local ec = util.byte_col(eline, raw.range["end"].character, enc)
    if er > row or ec > col then
      tail_end = { er, ec }
    end
  end
  if text:match("^%s*$") then
    return nil
  end
  return {
    bufnr = bufnr,
    client_id = client.id,
    item = raw,
    row = row,
    col = col,
    text = text,
    tail_end = tail_end,
    consumed = consumed,
    tick = vim.api.nvim_buf_get_changedtick(bufnr),
  }
end


function M.next_word(text)
  return text:match("^%s*[%w_]+") or text:match("^%s*[^%w_%s]+") or text:match("^%s+") or text
end

function M.next_line(text)
  if text:sub(1, 1) == "\n" then
    return "\n" .. (text:sub(2):match("^[^\n]*") or "")
  end
  return text:match("^[^\n]*")
end

return M
