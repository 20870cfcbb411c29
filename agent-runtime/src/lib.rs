//! The Agentry agent runtime: the Claude tool-use loop on Amazon Bedrock, served over HTTP.
