@profile:xmpp
Feature: Messages to a sleeping iPhone over XMPP push (XEP-0357)
  The XMPP server publishes to the app server when a stanza reaches a hibernated XEP-0198 session;
  the app server wakes the iPhone with an alert push. A message is never a VoIP push (iOS 13+),
  and its text does not leave the servers unless the deployment says so.

  Background:
    Given Alice's iPhone has enabled XMPP push with a VoIP token and an alert token
    And Alice's iPhone drops off the network and its XMPP session hibernates

  @req:XMPP-1
  Scenario: A message to a hibernated session gives exactly one alert push, without its text
    When Bob sends Alice the XMPP message "meet at the north gate"
    Then the app server sends exactly one alert push on the app's topic to Alice's alert token within 3 s
    And no push to Alice contains "north gate"
    And Alice's iPhone shows a notification within 2 s
    And after reconnecting Alice's iPhone receives the message "meet at the north gate" exactly once

  @req:XMPP-9 @profile:callkit-voip
  Scenario: No message, chat state or receipt is ever sent as a VoIP push
    When Bob sends Alice the XMPP message "one"
    And Bob sends Alice a typing notification
    And Bob sends Alice the XMPP message "two"
    Then the gateway sends no VoIP push to Alice within 3 s
    And Alice's iPhone does not ring within 1 s
