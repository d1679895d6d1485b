@profile:sip
Feature: Wake and delivery
  An INVITE for a sleeping iPhone becomes one VoIP push; the woken iPhone REGISTERs and gets the
  INVITE on the connection it just opened. Asleep, the iPhone's app has no socket: the push
  relaunches it, and it REGISTERs from a new local port (a new Contact, a new connection) with
  the same +sip.instance, as iOS does; an INVITE sent only to its old Contact never reaches it.
  The iPhone takes 300 ms to 2 s to REGISTER after each push (drawn from the run's seed), as real
  devices do; a scenario that counts from Bob's call fixes it at 1 s, so "fast" (at the refused
  REGISTER) and "at the Bucket Timer" (3 s) stay apart.

  Background:
    Given Alice's iPhone is asleep with a VoIP token

  @req:SIP-B1
  Scenario: A call wakes the sleeping iPhone and is answered
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Alice's iPhone registers within 3 s of the push
    And Alice's iPhone receives Bob's INVITE within 1 s of its REGISTER
    When Alice answers on her iPhone
    Then Bob gets 200 OK from Alice's iPhone within 2 s

  @req:SIP-B1
  Scenario: A call wakes the sleeping iPhone and is answered (UDP, relaunched on a new port)
    Given Alice's iPhone is asleep with a VoIP token over UDP
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Alice's iPhone registers within 3 s of the push
    And Alice's iPhone receives Bob's INVITE within 1 s of its REGISTER
    When Alice answers on her iPhone
    Then Bob gets 200 OK from Alice's iPhone within 2 s

  @req:SIP-B1
  Scenario: A call wakes the sleeping iPhone and is answered (TCP, relaunched on a new connection)
    Given Alice's iPhone is asleep with a VoIP token over TCP
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Alice's iPhone registers within 3 s of the push
    And Alice's iPhone receives Bob's INVITE within 1 s of its REGISTER
    When Alice answers on her iPhone
    Then Bob gets 200 OK from Alice's iPhone within 2 s

  @req:SIP-B1 @profile:tls
  Scenario: A call wakes the sleeping iPhone and is answered (TLS, relaunched on a new connection)
    Given Alice's iPhone is asleep with a VoIP token over TLS
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Alice's iPhone registers within 3 s of the push
    And Alice's iPhone receives Bob's INVITE within 1 s of its REGISTER
    When Alice answers on her iPhone
    Then Bob gets 200 OK from Alice's iPhone within 2 s

  @req:SIP-B1
  Scenario: A call wakes a suspended iPhone whose app kept its socket
    Given Alice's iPhone is suspended with a VoIP token, its app keeping its socket
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Alice's iPhone registers within 3 s of the push
    And Alice's iPhone receives Bob's INVITE within 1 s of its REGISTER
    When Alice answers on her iPhone
    Then Bob gets 200 OK from Alice's iPhone within 2 s

  @req:SIP-B2 @profile:tls
  Scenario: Every wake on a new TLS connection gets the INVITE on that connection
    Given Alice's iPhone is asleep with a VoIP token over TLS
    When Bob calls Alice 5 times, hanging up once her iPhone has the INVITE, her iPhone going back to sleep in between
    Then every INVITE reached Alice's iPhone on the connection it opened when it woke, within 1 s of its REGISTER

  @req:SIP-B4 @profile:digest-auth
  Scenario: A challenged REGISTER keeps the INVITE waiting until it is authenticated
    Given the gateway requires digest authentication for Alice
    And Alice's iPhone answers challenges with the right password
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Alice's iPhone's REGISTER is challenged and then accepted within 3 s of the push
    And Alice's iPhone receives Bob's INVITE within 1 s of its REGISTER
    When Alice answers on her iPhone
    Then Bob gets 200 OK from Alice's iPhone within 2 s

  @req:SIP-B4 @profile:digest-auth
  Scenario: A REGISTER that fails authentication fails the call fast
    Given the gateway requires digest authentication for Alice
    And Alice's iPhone answers challenges with a wrong password
    And Alice's iPhone takes 1 s to register after a push
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Alice's iPhone's REGISTER is challenged and then refused within 3 s of the push
    And Bob gets 404 or 480 within 2 s

  @req:SIP-B6
  Scenario: A retransmitted INVITE gives one push
    When Bob calls Alice over UDP and retransmits the INVITE twice
    Then the gateway pushes to Alice's token exactly once within 3 s

  @req:SIP-B7
  Scenario: A registration refresh with no call waiting brings no INVITE
    When Alice's iPhone refreshes its registration
    Then Alice's iPhone receives no INVITE within 2 s of its REGISTER
