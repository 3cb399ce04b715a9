print('placeholder trial script')
