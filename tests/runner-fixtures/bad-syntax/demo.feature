@demo
Feature: Runner demo, a Gherkin syntax error

  @req:DEMO-PASS
  Scenario: A scenario with a broken line
    Given the demo party "bob" sends "INVITE sip:alice@example.com" to "gateway"
    Then the demo timeline has 1 event
  Scenari: a keyword with a typo
    Then the demo timeline has 1 event
