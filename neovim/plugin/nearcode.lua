-- Commands exist as soon as the plugin is on 'runtimepath'; the server starts on setup().
if vim.g.loaded_nearcode then
  return
end
vim.g.loaded_nearcode = true
if vim.fn.has("nvim-0.10") ~= 1 then
  vim.notify_once("nearcode needs Neovim 0.10 or later", vim.log.levels.WARN)
  return
end
require("nearcode.commands").create()
