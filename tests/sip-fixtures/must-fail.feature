@profile:sip
Feature: The SIP checks no reference-gateway fault reaches can fail (tests/runner.rs runs this)
  Each scenario sets up what a correct gateway does and asks for what it cannot show: the check
  must report a failure, not pass and not be inconclusive.

  @req:CHECK-CALL-1-STOPS-RINGING
  Scenario: A call Bob never cancelled still rings after the REGISTER
    Given Alice's iPhone is asleep with a VoIP token
    And Alice's iPhone takes 1 s to register after a push
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Alice's iPhone stops ringing for call 1 within 4 s of its REGISTER
