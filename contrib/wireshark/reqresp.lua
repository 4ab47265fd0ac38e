-- reqresp.lua: a Wireshark dissector for reqresp messages over TCP.
--
-- reqresp frames each message on a TCP stream in one of two ways (see
-- src/protocol/framing.rs):
--   line    the message is the bytes up to "\n" (a "\r" before it is dropped)
--   length  a 4-byte big-endian length, then that many bytes
-- TCP does not keep message boundaries: one segment may carry several
-- messages, one message may span several segments. This dissector asks TCP
-- to reassemble (pinfo.desegment_len) until a whole message is there, and
-- shows every message of a segment.
--
-- Fields:
--   reqresp.role     "request" (sent to the server port) or "response"
--   reqresp.text     the message (payload without newline or prefix)
--   reqresp.length   its length in bytes
--   reqresp.framing  "line" or "length"
--
-- Registered on TCP port 2222 (the preference "Server port" changes it);
-- for other ports use Analyze > Decode As... > TCP port > REQRESP, or
-- `tshark -d tcp.port==9000,reqresp`. Choose the framing in
-- Edit > Preferences > Protocols > REQRESP, or `-o reqresp.framing:length`.
--
-- Install: copy this file into Wireshark's personal Lua plugins folder
-- (Linux/macOS ~/.local/lib/wireshark/plugins/, Windows
-- %APPDATA%\Wireshark\plugins\) and restart Wireshark; or load it once with
-- `wireshark -X lua_script:reqresp.lua` / `tshark -X lua_script:reqresp.lua`.

local reqresp = Proto("reqresp", "reqresp request/response protocol")

local FRAMING_LINE = 1
local FRAMING_LENGTH = 2
local framing_names = { [FRAMING_LINE] = "line", [FRAMING_LENGTH] = "length" }
local LENGTH_PREFIX = 4

local f_role = ProtoField.string("reqresp.role", "Role")
local f_text = ProtoField.string("reqresp.text", "Text")
local f_length = ProtoField.uint32("reqresp.length", "Length", base.DEC)
local f_framing = ProtoField.string("reqresp.framing", "Framing")
reqresp.fields = { f_role, f_text, f_length, f_framing }

local e_too_long = ProtoExpert.new("reqresp.too_long.expert",
    "Message longer than the maximum length preference; rest of segment not dissected",
    expert.group.MALFORMED, expert.severity.ERROR)
reqresp.experts = { e_too_long }

reqresp.prefs.framing = Pref.enum("Framing", FRAMING_LINE,
    "How messages are delimited: lines ending in \\n, or a 4-byte big-endian length prefix",
    { { 1, "line", FRAMING_LINE }, { 2, "length", FRAMING_LENGTH } }, true)
reqresp.prefs.port = Pref.uint("Server port", 2222,
    "TCP port of the reqresp server: messages sent to it are requests")
reqresp.prefs.max_length = Pref.uint("Maximum message length", 1048576,
    "Longer messages are flagged as malformed instead of reassembled (bounds memory)")

-- The server's port: the one the dissector table matched (the registered
-- port or a Decode As port), else the preference.
local function server_port(pinfo)
    local matched = pinfo.match_uint
    if matched ~= nil and matched ~= 0 then
        return matched
    end
    return reqresp.prefs.port
end

-- Looks for one message at `offset`. Returns
--   consumed, payload_offset, payload_len   when a whole message is there
--   0, needed                               when more bytes are needed
--   -1                                      when it exceeds max_length
local function find_message(tvb, offset, framing, max)
    local avail = tvb:len() - offset
    if framing == FRAMING_LENGTH then
        if avail < LENGTH_PREFIX then
            return 0, LENGTH_PREFIX - avail
        end
        local len = tvb(offset, LENGTH_PREFIX):uint()
        if len > max then
            return -1
        end
        if avail < LENGTH_PREFIX + len then
            return 0, LENGTH_PREFIX + len - avail
        end
        return LENGTH_PREFIX + len, offset + LENGTH_PREFIX, len
    end
    -- Line: search only the first max + 2 bytes ("\r\n" after max bytes).
    local window = math.min(avail, max + 2)
    local nl = string.find(tvb:raw(offset, window), "\n", 1, true)
    if nl == nil then
        if avail > max + 1 then
            return -1
        end
        -- The length of the rest of a line is unknown: one more segment.
        return 0, DESEGMENT_ONE_MORE_SEGMENT
    end
    local len = nl - 1
    if len > 0 and tvb(offset + len - 1, 1):uint() == 13 then
        len = len - 1
    end
    if len > max then
        return -1
    end
    return nl, offset, len
end

function reqresp.dissector(tvb, pinfo, tree)
    local framing = reqresp.prefs.framing
    local max = reqresp.prefs.max_length
    local role = (pinfo.dst_port == server_port(pinfo)) and "request" or "response"
    local total = tvb:len()
    local offset = 0
    local texts = {}

    while offset < total do
        local consumed, payload_offset, payload_len = find_message(tvb, offset, framing, max)
        if consumed == -1 then
            local item = tree:add(reqresp, tvb(offset), "reqresp: message too long")
            item:add_proto_expert_info(e_too_long)
            offset = total
            break
        end
        if consumed == 0 then
            -- Ask TCP for `payload_offset` more bytes (or one more segment)
            -- and hand back everything from this message's start.
            pinfo.desegment_offset = offset
            pinfo.desegment_len = payload_offset
            break
        end

        local text = ""
        if payload_len > 0 then
            text = tvb(payload_offset, payload_len):string()
        end
        local msg = tvb(offset, consumed)
        local subtree = tree:add(reqresp, msg,
            string.format("reqresp %s (%s), %d bytes: %s", role, framing_names[framing],
                payload_len, text))
        subtree:add(f_role, msg, role):set_generated()
        subtree:add(f_framing, msg, framing_names[framing]):set_generated()
        if framing == FRAMING_LENGTH then
            subtree:add(f_length, tvb(offset, LENGTH_PREFIX))
        else
            subtree:add(f_length, msg, payload_len):set_generated()
        end
        if payload_len > 0 then
            subtree:add(f_text, tvb(payload_offset, payload_len))
        else
            subtree:add(f_text, msg, "")
        end
        texts[#texts + 1] = text
        offset = offset + consumed
    end

    if #texts > 0 then
        pinfo.cols.protocol = "REQRESP"
        local label = (role == "request") and "Request" or "Response"
        pinfo.cols.info = label .. ": " .. table.concat(texts, " | ")
    end
    return total
end

-- Registration comes last: a Protocol can join a table only once its
-- dissector function exists.
local tcp_port = DissectorTable.get("tcp.port")
local registered_port = reqresp.prefs.port
tcp_port:add(registered_port, reqresp)

function reqresp.prefs_changed()
    if reqresp.prefs.port ~= registered_port then
        tcp_port:remove(registered_port, reqresp)
        registered_port = reqresp.prefs.port
        tcp_port:add(registered_port, reqresp)
    end
end
