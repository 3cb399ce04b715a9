print("placeholder trial script")
