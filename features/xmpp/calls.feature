@profile:xmpp
Feature: A call to a sleeping iPhone over XMPP (XEP-0353 Jingle Message Initiation)
  A JMI propose to a hibernated session must wake the iPhone with one VoIP push (iOS 13+: the app
  reports a CallKit call at once) carrying the JMI id as the call id, so the phone rings before it
  reconnects. Prosody 0.12 publishes a propose twice (the "urgent" push and the smacks batch); the
  phone must still get one VoIP push per call.

  Background:
    Given Alice's iPhone has enabled XMPP push with a VoIP token and an alert token
    And Alice's iPhone drops off the network and its XMPP session hibernates

  @req:XMPP-2
  Scenario: One VoIP push per call, shaped as Apple requires, with the JMI id
    When Bob calls Alice over XMPP
    Then the app server sends exactly one VoIP push to Alice's iPhone within 3 s
    And the VoIP push has type voip, topic "<bundle>.voip", priority 10 and expiration 0
    And the VoIP push's payload carries the call's JMI id and Bob's JID
    And Alice's iPhone rings for the XMPP call within 2 s

  @req:XMPP-3
  Scenario: The caller retracts before the iPhone reconnects: it stops ringing and never rings again for that call
    When Bob calls Alice over XMPP
    And Alice's iPhone rings for the XMPP call within 3 s
    And Bob retracts the call
    Then Alice's iPhone stops ringing within 2 s
    And after reconnecting Alice's iPhone sees no live call proposal
    And Alice's iPhone does not ring within 2 s

  @req:XMPP-6
  Scenario: Answered on Alice's desktop: the iPhone stops ringing
    Given Alice's desktop is online over XMPP
    When Bob calls Alice over XMPP
    And Alice's iPhone rings for the XMPP call within 3 s
    And Alice's desktop answers the call
    Then Alice's iPhone stops ringing within 2 s
    And CallKit ends the call on Alice's iPhone as "answeredElsewhere" within 2 s

  @req:XMPP-6
  Scenario: Rejected on Alice's desktop: the iPhone stops ringing
    Given Alice's desktop is online over XMPP
    When Bob calls Alice over XMPP
    And Alice's iPhone rings for the XMPP call within 3 s
    And Alice's desktop rejects the call
    Then Alice's iPhone stops ringing within 2 s
    And CallKit ends the call on Alice's iPhone as "declinedElsewhere" within 2 s
