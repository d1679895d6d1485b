@demo
Feature: Runner demo, a step that never returns

  @req:DEMO-PASS
  Scenario: Passes while the other hangs
    Given the demo party "bob" sends "INVITE sip:alice@example.com" to "gateway"
    Then the demo timeline has 1 event

  @req:DEMO-HANG
  Scenario: Hangs
    Given the demo party "bob" sends "INVITE sip:alice@example.com" to "gateway"
    Then the demo step never returns
    And the demo timeline has 1 event
