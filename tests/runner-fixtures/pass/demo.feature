@demo
Feature: Runner demo, passing

  Background:
    Given the demo party "bob" sends "INVITE sip:alice@example.com" to "gateway"

  @req:DEMO-PASS
  Scenario: A message is recorded
    Then the demo timeline has 1 event

  @req:DEMO-PASS @req:DEMO-MORE
  Scenario Outline: Several messages are recorded (<what>)
    When the demo party "gateway" sends "<what>" to "bob"
    Then the demo timeline has <count> events

    Examples:
      | what        | count |
      | 100 Trying  | 2     |
      | 180 Ringing | 2     |

  Rule: Profiles
    @req:DEMO-PROFILE @profile:cancel-push
    Scenario: Only for gateways that send a cancel push
      Then the demo timeline has 1 event

    @req:DEMO-PROFILE @profile:rfc8599-drop|flexisip-replay
    Scenario: For gateways that drop or replay
      Then the demo timeline has 1 event
