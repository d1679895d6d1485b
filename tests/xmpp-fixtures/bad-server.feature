@profile:xmpp
Feature: A server that sends bad XMPP fails the step that met it (tests/xmpp_bad_server.rs)
  A scripted server plays the target: what it sends that is not XMPP, or not what the protocol
  allows at that point, must fail the step that read it and show the bytes; never a pass, a panic
  or a hang.

  @req:CHECK-BAD-SERVER
  Scenario: Alice's iPhone meets a server that misbehaves
    Given Alice's iPhone has enabled XMPP push with a VoIP token and an alert token
    When Bob sends Alice the XMPP message "hello"
    Then the app server sends no push to Alice's tokens within 2 s
