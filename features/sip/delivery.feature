@profile:sip
Feature: Delivery failures
  APNs refuses a token, fails for a while, or cannot reach the iPhone (flight mode). Bob must get
  a final answer in time, dead tokens must be dropped, and a push APNs stored must not leave a
  ghost ringing.

  Background:
    Given Alice's iPhone is asleep with a VoIP token

  @req:SIP-E1
  Scenario Outline: APNs refuses the token (<status> <reason>)
    Given APNs answers <status> <reason> to the next push for Alice's token
    When Bob calls Alice
    Then Bob gets 404 or 480 within 2 s

    Examples:
      | status | reason                 |
      | 410    | Unregistered           |
      | 400    | BadDeviceToken         |
      | 400    | DeviceTokenNotForTopic |

  @req:SIP-E1
  Scenario: A token APNs says is unregistered is dropped
    Given APNs answers 410 Unregistered to the next push for Alice's token
    When Bob calls Alice
    Then Bob gets 404 or 480 within 2 s
    When Bob calls Alice again
    Then the gateway sends no push to Alice within 3 s
    And Bob gets 404 or 480 within 2 s

  @req:SIP-E2 @profile:retry-5xx
  Scenario: The gateway retries while APNs is unavailable
    Given APNs answers 503 to the next 2 pushes for Alice's token
    When Bob calls Alice
    Then APNs accepts the third push request within 2 s
    And Bob has no final response yet

  @req:SIP-E2
  Scenario: Retries are bounded
    Given APNs answers 500 to every push for Alice's token
    When Bob calls Alice
    Then Bob gets 480 Temporarily Unavailable within 5 s
    And the gateway sent at most 4 push requests for the call

  @req:SIP-E3
  Scenario: Flight mode: the push is lost and nothing rings afterwards
    Given Alice's iPhone is in flight mode
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Bob gets 480 Temporarily Unavailable within the bucket timer plus 1 s
    When Alice's iPhone leaves flight mode 2 s later
    Then Alice's iPhone does not ring within 3 s

  @req:SIP-E4 @profile:flexisip-replay
  Scenario: Flight mode: a stored push is delivered after the caller hung up (replay then cancel)
    Given Alice's iPhone is in flight mode
    And APNs keeps pushes for Alice's iPhone even with expiration 0
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    And Bob hangs up 1 s after the push
    Then Bob gets 487 Request Terminated within 1 s
    When Alice's iPhone leaves flight mode 2 s later
    Then Alice's iPhone rings for the call before its REGISTER
    And Alice's iPhone receives Bob's INVITE and then its CANCEL within 1 s of its REGISTER
    And Alice's iPhone stops ringing within 1 s of its REGISTER

  @req:SIP-E4 @profile:rfc8599-drop
  Scenario: Flight mode: a stored push is delivered after the caller hung up (RFC 8599 drop)
    Given Alice's iPhone is in flight mode
    And APNs keeps pushes for Alice's iPhone even with expiration 0
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    And Bob hangs up 1 s after the push
    Then Bob gets 487 Request Terminated within 1 s
    When Alice's iPhone leaves flight mode 2 s later
    Then Alice's iPhone rings for the call before its REGISTER
    And Alice's iPhone receives no INVITE for the call within 3 s of its REGISTER
    And Alice's iPhone stops ringing within 5 s and shows a missed call

  @req:SIP-E4 @profile:cancel-push
  Scenario: Flight mode: a stored push is delivered after the caller hung up (call-ended push)
    Given Alice's iPhone is in flight mode
    And APNs keeps pushes for Alice's iPhone even with expiration 0
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    And Bob hangs up 1 s after the push
    Then Bob gets 487 Request Terminated within 1 s
    When Alice's iPhone leaves flight mode 2 s later
    Then Alice's iPhone rings for the call before its REGISTER
    And Alice's iPhone receives no INVITE for the call within 3 s of its REGISTER
    And Alice's iPhone stops ringing within 1 s
