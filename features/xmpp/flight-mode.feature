@profile:xmpp
Feature: Flight mode over XMPP push
  In flight mode the XMPP connection is half-open (no FIN) and APNs cannot reach the device. A call
  push has expiration 0, so APNs drops it: the phone must not ring for a call that is over when it
  comes back. A message push may be stored and delivered late: it shows the message once.

  Background:
    Given Alice's iPhone has enabled XMPP push with a VoIP token and an alert token
    And Alice's iPhone goes into flight mode

  @req:XMPP-4
  Scenario: The call push is lost; back online the iPhone does not ring for the dead call
    When Bob calls Alice over XMPP
    And the app server sends exactly one VoIP push to Alice's iPhone within 10 s
    And Bob retracts the call
    And Alice's iPhone leaves flight mode
    Then Alice's iPhone does not ring within 3 s
    And after reconnecting Alice's iPhone sees no live call proposal

  @req:XMPP-5
  Scenario: The message push is stored and delivered late
    When Bob sends Alice the XMPP message "are you there"
    And the app server sends exactly one alert push on the app's topic to Alice's alert token within 10 s
    And Alice's iPhone leaves flight mode
    Then Alice's iPhone shows a notification within 2 s
    And after reconnecting Alice's iPhone receives the message "are you there" exactly once
