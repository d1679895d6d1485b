@demo
Feature: Runner demo, every verdict

  @req:DEMO-PASS
  Scenario: Passes
    Given the demo party "bob" sends "INVITE sip:alice@example.com" to "gateway"
    Then the demo timeline has 1 event

  @req:DEMO-FAIL
  Scenario: Fails with the offending message
    Given the demo party "bob" sends "INVITE sip:alice@example.com" to "gateway"
    When the demo party "gateway" sends "480 Temporarily Unavailable" to "bob"
    Then the demo check fails because "no push was sent"
    And the demo timeline has 2 events

  @req:DEMO-INCONC
  Scenario: Cannot establish its precondition
    Given the demo party "bob" sends "REGISTER sip:example.com" to "gateway"
    Then the demo precondition cannot be established because "the gateway refused the registration"

  @req:DEMO-INCONC
  Scenario: Records an inconclusive verdict and goes on
    Given the demo party "bob" sends "OPTIONS sip:example.com" to "gateway"
    Then the demo records an inconclusive verdict because "clock skew"
    And the demo timeline has 2 events

  @req:DEMO-RETRY @retry(2)
  Scenario: Passes on its second attempt
    Given the demo party "bob" sends "INVITE sip:alice@example.com" to "gateway"
    Then the demo check fails on the first attempt only

  @req:DEMO-PANIC
  Scenario: A step panics
    Then the demo step panics
