@profile:xmpp
Feature: The XMPP reconnect checks can fail (tests/xmpp_features.rs runs this against Prosody)
  Each scenario sets up what a correct server does and asks for what it cannot show: the check
  must report a failure, not pass and not be inconclusive.

  Background:
    Given Alice's iPhone has enabled XMPP push with a VoIP token and an alert token
    And Alice's iPhone drops off the network and its XMPP session hibernates

  @req:CHECK-LIVE-CALL
  Scenario: A call Bob never retracted is still live after reconnecting
    When Bob calls Alice over XMPP
    Then the app server sends exactly one VoIP push to Alice's iPhone within 2 s
    And after reconnecting Alice's iPhone sees no live call proposal

  @req:CHECK-MESSAGE
  Scenario: A message Bob never sent is not received after reconnecting
    When Bob sends Alice the XMPP message "sent"
    Then after reconnecting Alice's iPhone receives the message "never sent" exactly once
