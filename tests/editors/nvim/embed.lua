-- A child Neovim (--embed: it runs its normal event loop and reads typed keys) with the nearcode
-- plugin loaded through 'runtimepath', driven over RPC by a test script run with `nvim -l`.
-- Shared by plugin_ghost.lua and plugin_cycle.lua.
-- Load with: local embed = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), "embed.lua"))
local M = {}

--- Start the child. Returns an object with lua(code, ...), input(keys), ghost(), ...
function M.child()
  local chan = vim.fn.jobstart({ vim.v.progpath, "--embed", "--headless", "--clean", "-n" }, { rpc = true })
  assert(chan > 0, "could not start the child Neovim")
  local child = {}

  function child.lua(code, ...)
    return vim.rpcrequest(chan, "nvim_exec_lua", code, { ... })
  end

  function child.input(keys)
    vim.rpcrequest(chan, "nvim_input", keys)
  end

  --- The suggestion's text as the plugin shows it, or vim.NIL.
  function child.ghost()
    return child.lua([[local s = require("nearcode.suggestion").current(); return s and s.text or vim.NIL]])
  end

  --- Set the plugin up with `nearcode lsp --stdio` and open `file` as Python.
  function child.open(plugin_dir, nearcode, file)
    child.lua(
      [[
      local plugin_dir, nearcode, file = ...
      vim.opt.rtp:prepend(plugin_dir)
      vim.o.showmode = false
      require("nearcode").setup({ cmd = { nearcode, "lsp", "--stdio" } })
      vim.cmd.edit(vim.fn.fnameescape(file))
      vim.bo.filetype = "python"
    ]],
      plugin_dir,
      nearcode,
      file
    )
  end

  --- Wait until the plugin's client is attached and initialized.
  function child.attached(ms)
    return vim.wait(ms, function()
      return child.lua([[local c = require("nearcode").client(0); return c ~= nil and c.initialized == true]])
    end, 50)
  end

  --- The server's counters (nearcode.status), through the plugin's client.
  function child.server_status()
    return child.lua([[
      local c = require("nearcode").client(0)
      local res = c:request_sync("workspace/executeCommand", { command = "nearcode.status", arguments = {} }, 5000, 0)
      return res and (res.result or { error = res.err }) or vim.NIL
    ]])
  end

  --- Record a Lua error, stop the servers (a shutdown writes what insight has pending), stop the
  --- child and write the report to `out`.
  function child.finish(report, ok, err, out)
    if not ok then
      report.lua_error = tostring(err)
    end
    pcall(child.lua, [[for _, c in ipairs(vim.lsp.get_clients()) do c:stop() end]])
    vim.wait(3000, function()
      local done, count = pcall(child.lua, [[return #vim.lsp.get_clients()]])
      return not done or count == 0
    end, 100)
    vim.fn.jobstop(chan)
    local f = assert(io.open(out, "w"))
    f:write(vim.json.encode(report))
    f:close()
  end

  return child
end

return M
