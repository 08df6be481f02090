--[[
SWUpdate image handler "ubootctl": installs a signed flash.bin with `ubootctl update` (NXP
AN12900's power-cut-safe rule) instead of writing the boot area itself. Install as
/usr/share/lua/5.3/swupdate_handlers.lua (or merge into the one there), with ubootctl in PATH
and the device settings in /etc/ubootctl.toml. In sw-description:

    images: ( { filename = "flash.bin"; type = "ubootctl"; sha256 = "…"; } );

SWUpdate checks the sha256 while it copies the image out; ubootctl verifies the HAB signature
and the board before it writes anything. SWUpdate has no commit step: ubootctl-commit.service
makes the fallback a copy of the new image once it has booted.
--]]

require("swupdate")

local function ubootctl_update(image)
    local path = os.tmpname()
    local err, msg = image:copy2file(path)
    if err ~= 0 then
        os.remove(path)
        swupdate.error(string.format("ubootctl: cannot copy %s out: %s", image.filename, tostring(msg)))
        return 1
    end
    -- os.tmpname() gives a plain path (no quotes), so the command line needs no escaping.
    local ok, how, code = os.execute("ubootctl update '" .. path .. "'")
    os.remove(path)
    if ok then
        swupdate.info(string.format("ubootctl: installed %s", image.filename))
        return 0
    end
    swupdate.error(string.format("ubootctl update %s: %s %s", image.filename, tostring(how), tostring(code)))
    return 1
end

swupdate.register_handler("ubootctl", ubootctl_update, swupdate.HANDLER_MASK.IMAGE_HANDLER)
