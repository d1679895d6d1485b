@profile:sip
Feature: The caller hangs up while the iPhone is waking
  A VoIP push cannot be taken back: the iPhone rings at once. When Bob hangs up before the
  iPhone has REGISTERed, Bob must get 487 at once and the iPhone must stop ringing soon and
  show a missed call. RFC 8599 says nothing about CANCEL, so the gateway's profile decides how the
  iPhone learns it.

  Background:
    Given Alice's iPhone is asleep with a VoIP token
    And Alice's iPhone takes 1 s to register after a push

  @req:SIP-C1 @profile:push-delay
  Scenario: The caller hangs up before the push went out
    Given the gateway delays its pushes by 1 s
    When Bob calls Alice
    And Bob hangs up 200 ms after calling
    Then Bob gets 487 Request Terminated within 1 s
    And the gateway sends no push to Alice within 3 s

  @req:SIP-C2 @profile:rfc8599-drop
  Scenario: The caller hangs up after the push, before the iPhone registers (RFC 8599 drop)
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    And Bob hangs up 300 ms after the push
    Then Bob gets 487 Request Terminated within 1 s
    And Alice's iPhone rings for the call before its REGISTER
    And Alice's iPhone receives no INVITE for the call within 3 s of its REGISTER
    And Alice's iPhone stops ringing within 5 s and shows a missed call

  @req:SIP-C2 @profile:flexisip-replay
  Scenario: The caller hangs up after the push, before the iPhone registers (replay then cancel)
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    And Bob hangs up 300 ms after the push
    Then Bob gets 487 Request Terminated within 1 s
    And Alice's iPhone rings for the call before its REGISTER
    And Alice's iPhone receives Bob's INVITE and then its CANCEL within 1 s of its REGISTER
    And Alice's iPhone stops ringing within 1 s of its REGISTER
    And Alice's iPhone stops ringing within 5 s and shows a missed call

  @req:SIP-C2 @profile:cancel-push
  Scenario: The caller hangs up after the push, before the iPhone registers (call-ended push)
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    And Bob hangs up 300 ms after the push
    Then Bob gets 487 Request Terminated within 1 s
    And Alice's iPhone rings for the call before its REGISTER
    And Alice's iPhone receives a call-ended push for the call within 2 s
    And Alice's iPhone receives no INVITE for the call within 3 s of its REGISTER
    And Alice's iPhone stops ringing within 5 s and shows a missed call

  @req:SIP-C5
  Scenario: The iPhone registers after the bucket timer fired
    Given Alice's iPhone is in flight mode
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Bob gets 480 Temporarily Unavailable within the bucket timer plus 1 s
    When Alice's iPhone registers again 1 s after Bob got 480
    Then Alice's iPhone receives no INVITE for the call within 3 s of its REGISTER

  @req:SIP-C6
  Scenario: A cancelled call is not replayed into the next one
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    And Bob hangs up 300 ms after the push
    And Bob calls Alice again 500 ms later
    Then Alice's iPhone receives no live INVITE for call 1
    And Alice's iPhone stops ringing for call 1 within 4 s of its REGISTER
    When Alice answers call 2 on her iPhone
    Then Bob gets 200 OK from Alice's iPhone within 2 s
