@profile:sip
Feature: Registration and binding hygiene
  The gateway keeps one binding per device with its RFC 8599 push parameters, tells the
  iPhone it will push, and pushes only to the token the device registered last.

  @req:SIP-A1
  Scenario: A REGISTER with push parameters is confirmed with Feature-Caps
    Given Alice's iPhone has a VoIP token "00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0"
    When Alice's iPhone registers with its push parameters
    Then the registration succeeds within 1 s
    And the 2xx carries its own Feature-Caps header "*;+sip.pns=\"apns\""

  @req:SIP-A3
  Scenario Outline: A capability query is answered with the push services the gateway serves (<query>)
    When Alice's iPhone registers with Contact parameters "<query>"
    Then the registration succeeds within 1 s
    And the 2xx carries its own Feature-Caps header "*;+sip.pns=\"apns\""

    Examples:
      | query            |
      | pn-provider=apns |
      | pn-provider      |

  @req:SIP-A3
  Scenario: A capability query for a push service the gateway lacks is not claimed
    When Alice's iPhone registers with Contact parameters "pn-provider=fcm"
    Then the query is refused with 555, or answered with a 2xx that claims no "fcm", within 1 s

  @req:SIP-A14
  Scenario: Alice's push parameters never reach the caller
    Given Alice's iPhone is asleep with a VoIP token
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Alice's iPhone registers within 3 s of the push
    And Alice's iPhone receives Bob's INVITE within 1 s of its REGISTER
    When Alice answers on her iPhone
    Then Bob gets 200 OK from Alice's iPhone within 2 s
    And nothing Bob received carries Alice's push parameters

  @req:SIP-A7
  Scenario: A rotated token replaces the old one
    Given Alice's iPhone is registered with VoIP token "1111111111111111111111111111111111111111111111111111111111111111"
    When Alice's iPhone re-registers with VoIP token "2222222222222222222222222222222222222222222222222222222222222222" from the same instance
    And Alice's iPhone goes to sleep
    And Bob calls Alice
    Then the gateway pushes to token "2222222222222222222222222222222222222222222222222222222222222222" within 2 s
    And the gateway sends no push to token "1111111111111111111111111111111111111111111111111111111111111111" within 3 s

  @req:SIP-A8
  Scenario: A device that moved to a new address keeps one binding
    Given Alice's iPhone is registered with VoIP token "3333333333333333333333333333333333333333333333333333333333333333"
    When Alice's iPhone re-registers from a new address with the same push parameters
    And Alice's iPhone goes to sleep
    And Bob calls Alice
    Then the gateway pushes to Alice's token exactly once within 3 s

  @req:SIP-A9
  Scenario: No push after the device unregistered
    Given Alice's iPhone is registered with VoIP token "4444444444444444444444444444444444444444444444444444444444444444"
    When Alice's iPhone unregisters
    And Bob calls Alice
    Then Bob gets 404 or 480 within 2 s
    And the gateway sends no push to token "4444444444444444444444444444444444444444444444444444444444444444" within 3 s

  @req:SIP-E5 @profile:short-expiry
  Scenario: No push for a binding that already expired
    Given Alice's iPhone is registered with a VoIP token and Expires 2 s
    When Alice's binding expires
    And Bob calls Alice
    Then Bob gets 404 or 480 within 2 s
    And the gateway sends no push to Alice within 3 s

  @req:SIP-A11
  Scenario Outline: REGISTERs real push clients send are understood (<shape>)
    Given Alice's iPhone has a VoIP token "<token>"
    When Alice's iPhone registers with a REGISTER that has "<shape>"
    Then the registration succeeds within 1 s
    And the 2xx carries its own Feature-Caps header "*;+sip.pns=\"apns\""
    When Alice's iPhone goes to sleep
    And Bob calls Alice
    Then the gateway pushes to token "<token>" within 2 s

    Examples:
      | shape                     | token                                                            |
      | compact headers           | 5555555555555555555555555555555555555555555555555555555555555555 |
      | +sip.instance and reg-id  | 6666666666666666666666666666666666666666666666666666666666666666 |
      | an IPv6 Contact host      | 7777777777777777777777777777777777777777777777777777777777777777 |
      | two Contacts              | 8888888888888888888888888888888888888888888888888888888888888888 |
      | an escaped pn-prid        | 9999999999999999999999999999999999999999999999999999999999999999 |

  @req:SIP-A12 @profile:linphone-dialect
  Scenario: Linphone's multi-token dialect pushes the VoIP token on the sandbox
    Given Alice's iPhone is asleep with a VoIP token and an alert token
    When Bob calls Alice
    Then the gateway pushes to Alice's VoIP token on the sandbox within 2 s
    And the gateway sends no push to Alice's alert token within 3 s

  @req:SIP-A12 @profile:linphone-dialect
  Scenario: A token and service count mismatch is refused cleanly
    Given Alice's iPhone has a VoIP token "cccc000000000000000000000000000000000000000000000000000000000000"
    When Alice's iPhone registers with Contact parameters "pn-provider=apns.dev;pn-param=<team>.<bundle>.remote&voip;pn-prid=cccc000000000000000000000000000000000000000000000000000000000000:voip"
    Then the registration is refused or confirmed without push support within 1 s
    And the gateway still accepts a REGISTER within 1 s

  @req:SIP-A13
  Scenario: A malformed token fails the call fast without hurting the gateway
    Given Alice's iPhone is registered with VoIP token "not-a-token"
    When Alice's iPhone goes to sleep
    And Bob calls Alice
    Then Bob gets 404 or 480 within 2 s
    And the gateway still accepts a REGISTER within 1 s
