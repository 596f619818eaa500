-- :NearcodeStatus, :NearcodeToggle and :NearcodeContext (created by plugin/nearcode.lua and by setup()).
local M = {}

function M.create()
  vim.api.nvim_create_user_command("NearcodeStatus", function()
    require("nearcode").show_status()
  end, { desc = "nearcode: show the server's last status" })
  vim.api.nvim_create_user_command("NearcodeContext", function()
    require("nearcode.context").show()
  end, { desc = "nearcode: show what the last completion in this buffer was given" })
  vim.api.nvim_create_user_command("NearcodeToggle", function(args)
    local arg = args.args
    local on = nil
    if arg == "on" then
      on = true
    elseif arg == "off" then
      on = false
    end
    require("nearcode").toggle(on)
  end, {
    nargs = "?",
    complete = function()
      return { "on", "off" }
    end,
    desc = "nearcode: turn completions on or off",
  })
end

return M
