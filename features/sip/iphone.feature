@profile:sip
Feature: The iOS 13+ contract
  Since iOS 13 every VoIP push must become a CallKit call at once, or iOS kills the app and, after
  repeated misses, stops delivering its VoIP pushes. The gateway must only send VoIP pushes the
  iPhone can ring for.

  @req:IOS-1
  Scenario: Every call push lets the iPhone ring for that call at once
    Given Alice's iPhone is asleep with a VoIP token
    And Alice's iPhone takes 1 s to register after a push
    When Bob calls Alice
    And the gateway pushes to Alice within 2 s
    Then Alice's iPhone rings for the call before its REGISTER

  @req:IOS-2 @profile:message-push @profile:linphone-dialect @profile:callkit-voip
  Scenario: A message shows a notification and never rings
    Given Alice's iPhone is asleep with a VoIP token and an alert token
    When Bob sends Alice a message
    Then Alice's iPhone shows a notification within 2 s
    And Alice's iPhone shows no bogus call
    And Alice's app has never been terminated and still receives VoIP pushes

  @req:IOS-3 @profile:callkit-voip
  Scenario: An app that ignores pushes it cannot match to a call is never cut off
    Given Alice's iPhone is asleep with a VoIP token
    And Alice's iPhone takes 1 s to register after a push
    And Alice's app ignores VoIP pushes it cannot match to a call
    When Bob calls Alice 3 times, hanging up 300 ms after each push
    And Bob sends Alice a message
    Then Alice's app has never been terminated and still receives VoIP pushes
