-- :checkhealth nearcode
local M = {}

function M.check()
  local health = vim.health
  health.start("nearcode")
  if vim.fn.has("nvim-0.10") == 1 then
    health.ok("Neovim " .. tostring(vim.version()))
  else
    health.error("Neovim 0.10 or later is needed")
  end
  local ok, nearcode = pcall(require, "nearcode")
  if not ok then
    health.error("cannot load the plugin: " .. tostring(nearcode))
    return
  end
  local cmd = nearcode.config.cmd
  if vim.fn.executable(cmd[1]) == 1 then
    health.ok(("server command: %s (%s)"):format(table.concat(cmd, " "), vim.fn.exepath(cmd[1])))
  else
    health.error(("%q not found"):format(cmd[1]), {
      "install nearcode (README.md at the repository's root)",
      "or set cmd in require('nearcode').setup({ cmd = { '/path/to/nearcode', 'lsp', '--stdio' } })",
    })
  end
  if vim.fn.has("nvim-0.12") == 1 and nearcode.config.native then
    health.info("ghost text: Neovim's vim.lsp.inline_completion")
  else
    health.info("ghost text: drawn by the plugin (extmarks)")
  end
  local clients = vim.lsp.get_clients({ name = "nearcode" })
  if #clients == 0 then
    health.warn("no nearcode language server running (open a file, or check `cmd`)")
  else
    health.ok(("language server running (client %d)"):format(clients[1].id))
  end
  for _, line in ipairs(nearcode.status_lines()) do
    health.info(line)
  end
end

return M
