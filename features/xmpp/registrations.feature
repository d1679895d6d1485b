@profile:xmpp
Feature: Registrations and app-server errors
  A user may enable push on several devices (one XEP-0357 node each); each gets its own push.
  When APNs says a token is dead (410), the app server answers the publish with an XMPP error and
  forgets the registration, so the XMPP server stops publishing for it (XEP-0357 §7.1).

  @req:XMPP-7
  Scenario: A call wakes each registered device once
    Given Alice's iPhone has enabled XMPP push with a VoIP token and an alert token
    And Alice's iPad has enabled XMPP push with a VoIP token and an alert token
    And Alice's iPhone drops off the network and its XMPP session hibernates
    And Alice's iPad drops off the network and its XMPP session hibernates
    When Bob calls Alice over XMPP
    Then the app server sends exactly one VoIP push to Alice's iPhone within 3 s
    And the app server sends exactly one VoIP push to Alice's iPad within 3 s

  @req:XMPP-8
  Scenario: The app was removed: the publish gets an error and the registration is dropped
    Given Alice's iPhone has enabled XMPP push with a VoIP token and an alert token
    And APNs answers 410 Unregistered for both of Alice's tokens
    And Alice's iPhone drops off the network and its XMPP session hibernates
    When Bob sends Alice the XMPP message "first"
    Then the app server answers the publish for Alice's iPhone with an XMPP error within 3 s
    And the app server has no registration for Alice's iPhone
    When Bob sends Alice the XMPP message "second"
    Then the app server sends no push to Alice's tokens within 3 s
