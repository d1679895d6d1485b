Feature: Runner demo, a scenario without a requirement

  @req:DEMO-PASS
  Scenario: Tagged
    Then the demo timeline has 0 events

  Scenario: Not tagged
    Then the demo timeline has 0 events
