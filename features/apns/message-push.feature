@profile:sip
Feature: Messages never travel as VoIP pushes
  Since iOS 13 a VoIP push that is not a call kills the app or shows a ringing screen for nothing.
  A message to a sleeping iPhone goes as an alert push to its alert token, or not at all.

  @req:APNS-6 @profile:message-push @profile:callkit-voip
  Scenario: A message to an iPhone with only a VoIP token is not pushed as VoIP
    Given Alice's iPhone is asleep with a VoIP token
    When Bob sends Alice a message
    Then the gateway sends no VoIP push to Alice within 3 s

  @req:APNS-6 @profile:message-push @profile:linphone-dialect @profile:callkit-voip
  Scenario: A message to an iPhone with an alert token goes as an alert push
    Given Alice's iPhone is asleep with a VoIP token and an alert token
    When Bob sends Alice a message
    Then the gateway sends an alert push on the app's topic to Alice's alert token within 2 s
    And the gateway sends no VoIP push to Alice within 3 s
