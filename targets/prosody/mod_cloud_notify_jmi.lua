-- mod_cloud_notify_jmi: puts the XEP-0353 (Jingle Message Initiation) action of the pushed stanza
-- into the XEP-0357 notification, in Tigase's format, so the app server can tell a call from a
-- message and knows the call id:
--   <jingle xmlns='tigase:push:jingle:0' action='propose|retract|proceed|accept|reject|finish'
--           sid='JMI id' from='caller full JID'><media>audio</media></jingle>
-- Vanilla mod_cloud_notify sends a propose with the same dummy body as a chat message; this is the
-- smallest hook that fixes that (the same hook point as mod_cloud_notify_priority_tag and
-- mod_cloud_notify_encrypted, which Debian bookworm does not ship).
-- Part of the pushbench Prosody target (targets/prosody/), not of Prosody.

local xmlns_jmi = "urn:xmpp:jingle-message:0";
local xmlns_tigase_jingle = "tigase:push:jingle:0";
local actions = { "propose", "retract", "proceed", "accept", "reject", "finish", "ringing" };

-- A JMI action another device of the user sent or received reaches a hibernated session as an
-- XEP-0280 carbon: look inside it (answered or rejected elsewhere).
local function unwrap_carbon(stanza)
	for _, direction in ipairs({ "sent", "received" }) do
		local carbon = stanza:get_child(direction, "urn:xmpp:carbons:2");
		local forwarded = carbon and carbon:get_child("forwarded", "urn:xmpp:forward:0");
		local inner = forwarded and forwarded:get_child("message", "jabber:client");
		if inner then return inner; end
	end
	return stanza;
end

module:hook("cloud_notify/push", function (event)
	local stanza = event.original_stanza;
	if not stanza or stanza.name ~= "message" then return; end
	stanza = unwrap_carbon(stanza);
	for _, action in ipairs(actions) do
		local jmi = stanza:get_child(action, xmlns_jmi);
		if jmi and jmi.attr.id then
			local tag = event.notification_payload:tag("jingle", {
				xmlns = xmlns_tigase_jingle; action = action; sid = jmi.attr.id; from = stanza.attr.from;
			});
			for description in jmi:childtags("description", "urn:xmpp:jingle:apps:rtp:1") do
				if description.attr.media then
					tag:text_tag("media", description.attr.media);
				end
			end
			tag:up();
			module:log("debug", "JMI %s %s marked in the push", action, jmi.attr.id);
			return;
		end
	end
end);
