-- Small helpers that hide the differences between Neovim 0.10, 0.11 and 0.12.
local M = {}

local has_011 = vim.fn.has("nvim-0.11") == 1

--- Call a method of an LSP client: `client:method(...)` on 0.11+, `client.method(...)` before.
---@param client vim.lsp.Client
---@param method string
function M.call(client, method, ...)
  if has_011 then
    return client[method](client, ...)
  end
  return client[method](...)
end

--- Byte column of an LSP `character` offset in `line`.
---@param line string
---@param character integer
---@param encoding string "utf-8" | "utf-16" | "utf-32"
---@return integer
function M.byte_col(line, character, encoding)
  if encoding == "utf-8" then
    return math.min(character, #line)
  end
  local ok, col
  if has_011 then
    ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  else
    ok, col = pcall(vim.str_byteindex, line, character, encoding == "utf-16")
  end
  if not ok then
    return #line
  end
  return col
end

--- Length of `s` in UTF-16 code units (what the protocol's acceptedLength counts).
---@param s string
---@return integer
function M.utf16_len(s)
  if s == "" then
    return 0
  end
  if has_011 then
    return vim.str_utfindex(s, "utf-16", nil, false)
  end
  local _, utf16 = vim.str_utfindex(s)
  return utf16
end

--- Text of an InlineCompletionItem's insertText (string, or StringValue for snippets).
---@param insert_text string|{kind: string, value: string}
---@return string text, boolean is_snippet
function M.insert_text(insert_text)
  if type(insert_text) == "table" then
    local value = insert_text.value or ""
    local ok, grammar = pcall(require, "vim.lsp._snippet_grammar")
    if ok then
      local parsed_ok, parsed = pcall(grammar.parse, value)
      if parsed_ok then
        return tostring(parsed), true
      end
    end
    return value, true
  end
  return insert_text or "", false
end

--- Expand tabs for display in virtual text (extmarks draw a literal tab as one cell).
---@param s string
---@param start_col integer display column where `s` begins
---@return string
function M.expand_tabs(s, start_col)
  if not s:find("\t", 1, true) then
    return s
  end
  local ts = vim.bo.tabstop > 0 and vim.bo.tabstop or 8
  local out, col = {}, start_col
  for ch in s:gmatch(".") do
    if ch == "\t" then
      local n = ts - (col % ts)
      out[#out + 1] = string.rep(" ", n)
      col = col + n
    else
      out[#out + 1] = ch
      col = col + 1
    end
  end
  return table.concat(out)
end

return M
