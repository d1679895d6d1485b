@profile:sip
Feature: Answer races
  The iPhone rings as soon as the push arrives, so the user can answer before the INVITE has
  reached it, and another of Alice's devices can answer while the iPhone is still waking.

  Background:
    Given Alice's iPhone is asleep with a VoIP token
    And Alice's iPhone takes 1 s to register after a push

  @req:SIP-D1
  Scenario: Alice answers before the INVITE arrived (fast answer)
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Alice's iPhone rings for the call before its REGISTER
    When Alice taps Answer 200 ms after her iPhone starts ringing
    Then Alice's iPhone answers the INVITE within 500 ms of receiving it
    And Bob gets 200 OK within 2 s of Alice's iPhone's REGISTER

  @req:SIP-D2 @profile:flexisip-replay @profile:fork
  Scenario: The desktop answers while the iPhone wakes (replay then cancel)
    Given Alice's desktop is awake and registered
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    And Alice's desktop answers 300 ms after the push
    Then Bob gets 200 OK from Alice's desktop within 1 s
    And Alice's iPhone rings for the call before its REGISTER
    And Alice's iPhone receives Bob's INVITE and then its CANCEL within 1 s of its REGISTER
    And Alice's iPhone receives a CANCEL with Reason "SIP;cause=200;text=\"Call completed elsewhere\"" within 2 s
    And CallKit ends the call on Alice's iPhone as "answeredElsewhere" within 1 s

  @req:SIP-D2 @profile:cancel-push @profile:fork
  Scenario: The desktop answers while the iPhone wakes (call-ended push)
    Given Alice's desktop is awake and registered
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    And Alice's desktop answers 300 ms after the push
    Then Bob gets 200 OK from Alice's desktop within 1 s
    And Alice's iPhone rings for the call before its REGISTER
    And Alice's iPhone receives a call-ended push for the call within 2 s
    And Alice's iPhone receives no INVITE for the call within 3 s of its REGISTER
    And CallKit ends the call on Alice's iPhone as "answeredElsewhere" within 2 s

  @req:SIP-D2 @profile:rfc8599-drop @profile:fork
  Scenario: The desktop answers while the iPhone wakes (RFC 8599 drop)
    Given Alice's desktop is awake and registered
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    And Alice's desktop answers 300 ms after the push
    Then Bob gets 200 OK from Alice's desktop within 1 s
    And Alice's iPhone rings for the call before its REGISTER
    And Alice's iPhone receives no INVITE for the call within 3 s of its REGISTER
    And Alice's iPhone stops ringing within 5 s
