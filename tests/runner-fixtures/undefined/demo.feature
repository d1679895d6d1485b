@demo
Feature: Runner demo, a step nobody wrote

  @req:DEMO-UNDEFINED
  Scenario: A step nobody wrote
    Given the demo party "bob" sends "INVITE sip:alice@example.com" to "gateway"
    Then the demo timeline has 1 events at most
