"""Check a Paynet card-storage OTP on behalf of mobile and web apps."""
