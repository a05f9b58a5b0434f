#compdef bootc
# zsh completion for bootc. Install: bootc completion zsh > "${fpath[1]}/_bootc"
# (or source <(bootc completion zsh) in ~/.zshrc). bootc only lists names while completing:
# it never runs a command.
_bootc() {
	local -a cands
	cands=("${(@f)$(${words[1]} ${words[2,CURRENT]} --generate-bash-completion 2>/dev/null)}")
	cands=(${cands:#})
	if (( ${#cands} )); then
		compadd -a cands
	else
		_files
	fi
}
compdef _bootc bootc
