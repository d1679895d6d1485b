@profile:sip
Feature: What a call push looks like
  A push for a call is a PushKit VoIP push for the app's VoIP topic, sent for immediate delivery,
  never stored by APNs, and it says which call it is for.

  Background:
    Given Alice's iPhone is asleep with a VoIP token

  @req:APNS-1
  Scenario: A call push is a VoIP push
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then the call push has "apns-push-type" set to "voip"

  @req:APNS-2
  Scenario: A call push goes to the VoIP topic
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then the call push has "apns-topic" set to "<bundle>.voip"

  @req:APNS-3
  Scenario: A call push is sent for immediate delivery
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then the call push has "apns-priority" set to "10"

  @req:APNS-4
  Scenario: A call push is never stored by APNs
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then the call push has "apns-expiration" set to "0"

  @req:APNS-5
  Scenario: A call push says which call it is for
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then the call push's payload carries the Call-ID of Bob's INVITE
    And the call push's payload carries every other key the target declares
