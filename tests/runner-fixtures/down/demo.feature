@demo
Feature: Runner demo, a gateway that stops answering

  @req:DEMO-DOWN
  Scenario: Running when the gateway goes quiet
    Given the demo party "bob" sends "INVITE sip:alice@example.com" to "gateway"
    Then the demo check waits 9000 ms, then fails because "no 200 OK"

  @req:DEMO-DOWN
  Scenario: Would start after the gateway went quiet
    Given the demo party "bob" sends "INVITE sip:alice@example.com" to "gateway"
    Then the demo timeline has 1 event

  @req:DEMO-DOWN
  Scenario: Would start later still
    Given the demo party "bob" sends "INVITE sip:alice@example.com" to "gateway"
    Then the demo timeline has 1 event
