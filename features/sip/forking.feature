@profile:sip
Feature: Several devices
  Alice's call forks to every device she has: awake ones at once, sleeping iOS ones through a
  push each. The first answer wins and the others are told the call was answered elsewhere.

  @req:SIP-F1 @profile:fork
  Scenario: Two sleeping iOS devices are both woken; the one that answers wins
    Given Alice's iPhone is asleep with a VoIP token
    And Alice's iPad is asleep with a VoIP token
    When Bob calls Alice
    Then the gateway pushes to Alice's iPhone within 2 s
    And the gateway pushes to Alice's iPad within 2 s
    And Alice's iPhone receives Bob's INVITE within 1 s of its REGISTER
    And Alice's iPad receives Bob's INVITE within 1 s of its REGISTER
    When Alice answers on her iPad
    Then Bob gets 200 OK from Alice's iPad within 2 s
    And Alice's iPhone receives a CANCEL with Reason "SIP;cause=200;text=\"Call completed elsewhere\"" within 1 s
    And CallKit ends the call on Alice's iPhone as "answeredElsewhere" within 1 s

  @req:SIP-F2 @profile:fork
  Scenario: The awake desktop rings at once while the iPhone is pushed in parallel
    Given Alice's iPhone is asleep with a VoIP token
    And Alice's iPhone takes 1 s to register after a push
    And Alice's desktop is awake and registered
    When Bob calls Alice
    Then Alice's desktop receives Bob's INVITE within 500 ms
    And the gateway pushes to Alice within 2 s
    And Alice's iPhone receives Bob's INVITE within 1 s of its REGISTER
    When Alice answers on her iPhone
    Then Bob gets 200 OK from Alice's iPhone within 2 s
    And Alice's desktop receives a CANCEL with Reason "SIP;cause=200;text=\"Call completed elsewhere\"" within 1 s
